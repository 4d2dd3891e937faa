"""The guide's worked example is a real plugin: copy it out of the guide, install it, run it."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
from conftest import ROOT, run_sd

GUIDE = ROOT / "docs" / "writing-a-dataset-plugin.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\s*```[a-z]*\n(?P<body>.*?)```", re.S)


def guide_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(GUIDE.read_text())}


def pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=600)


def install_from_guide(tmp_path, dist: str):
    """Copy the guide's files of ``dist`` out, pip-install it, and uninstall it afterwards."""
    files = {rel: body for rel, body in guide_files().items() if rel.startswith(f"{dist}/")}
    module = dist.replace("-", "_")
    assert {f"{dist}/pyproject.toml", f"{dist}/{module}/plugin.py", f"{dist}/{module}/__init__.py"} <= set(files)
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    res = pip("install", "--no-deps", "--no-build-isolation", str(tmp_path / dist))
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        yield tmp_path
    finally:
        res = pip("uninstall", "-y", dist)
        assert res.returncode == 0, res.stderr


@pytest.fixture
def installed_eyes(tmp_path):
    yield from install_from_guide(tmp_path, "sd-eyes")


@pytest.fixture
def installed_tapping(tmp_path):
    yield from install_from_guide(tmp_path, "sd-tapping")


def test_guide_plugin_installs_lists_and_preprocesses(installed_eyes, tmp_path):
    plugins = {p["name"]: p for p in json.loads(run_sd("plugins", "--json").stdout)}
    assert plugins["sd-eyes"]["status"] == "loaded" and plugins["sd-eyes"]["version"] == "0.1.0"

    datasets = {d["dataset"]: d for d in json.loads(run_sd("datasets", "--json").stdout)}
    assert datasets["eyes"]["plugin"] == "sd-eyes"

    tasks = json.loads(run_sd("tasks", "--dataset", "eyes", "--json").stdout)
    assert {(t["task"], t["kind"], tuple(t["classes"])) for t in tasks} == {
        ("eyes", "classification", ("open", "closed")),
        ("gender", "classification", ("F", "M")),
        ("age", "regression", ()),
    }

    # its demo data through the real pipeline, from the command line
    from importlib import import_module

    raw = tmp_path / "raw"
    import_module("sd_eyes.plugin").EyesDataset().write_demo(raw)
    out = tmp_path / "out"
    res = run_sd("preprocess", "--dataset", "eyes", "--raw", str(raw), "--output", str(out),
                 "--fs", "125", "--nsamps", "500", "--resolution", "128")
    assert res.returncode == 0, res.stderr
    with open(out / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 * 2 * 19  # 40 s at 125 Hz, 4 s windows every 2 s
    assert {r["eyes"] for r in rows} == {"open", "closed"}
    assert rows[0]["caption"].endswith(f"subject with eyes {rows[0]['eyes']}")


def test_guide_events_plugin_labels_windows_from_annotations(installed_tapping, tmp_path, monkeypatch):
    tasks = json.loads(run_sd("tasks", "--dataset", "tapping", "--json").stdout)
    assert {(t["task"], tuple(t["classes"]), tuple(t["columns"])) for t in tasks} == {
        ("movement", ("rest", "tap"), ("movement",)), ("gender", ("F", "M"), ("gender",)),
        ("age", (), ("age",))}
    table = run_sd("tasks", "--dataset", "tapping").stdout
    assert "columns" in table and "movement" in table

    from importlib import import_module

    plugin = import_module("sd_tapping.plugin").TappingDataset()
    raw = tmp_path / "raw"
    plugin.write_demo(raw)
    out = tmp_path / "out"
    res = run_sd("preprocess", "--dataset", "tapping", "--raw", str(raw), "--output", str(out),
                 "--resolution", "64")  # fs and nsamps: the plugin's preprocess_defaults
    assert res.returncode == 0, res.stderr
    params = json.loads((out / "preprocess.json").read_text())["parameters"]
    assert (params["fs"], params["nsamps"], params["resolution"]) == (128.0, 512, 64)
    with open(out / "metadata.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # 60 s files in six 10 s blocks, 4 s windows every 2 s: the four windows inside each block are
    # kept, the five across a boundary left out
    assert len(rows) == 5 * 6 * 4
    for r in rows:
        start = float(r["start"])
        assert int(start // 10) == int((start + 3.99) // 10)
        assert r["movement"] == ("rest", "tap")[int(start // 10) % 2]
    assert {r["age"] for r in rows if r["subject"] == "sub-02"} == {""}  # unknown age: empty
    assert {r["age"] for r in rows if r["subject"] == "sub-01"} == {"31"}
    assert rows[0]["caption"].endswith("at rest") or rows[0]["caption"].endswith("tapping a finger")

    # in one process: every file is opened once, and its annotations are not read again
    import mne

    from sd_core.config import defaults
    from sd_core.preprocess import preprocess_dataset

    opened = []
    real_read_raw = mne.io.read_raw
    monkeypatch.setattr(mne.io, "read_raw", lambda path, **kw: opened.append(path) or real_read_raw(path, **kw))

    def no_second_read(*args, **kw):
        raise AssertionError("annotations read a second time")

    monkeypatch.setattr(mne, "read_annotations", no_second_read)
    prep = {**defaults()["preprocess"], **plugin.preprocess_defaults, "resolution": 64}
    result = preprocess_dataset(plugin, raw, tmp_path / "again", prep, list(plugin.channels),
                                {"min_cover": 0.75})
    assert not result.errors
    assert sorted(opened) == sorted(raw.glob("sub-*/*.edf"))
    with open(tmp_path / "again" / "metadata.csv", newline="") as fh:
        assert [r["movement"] for r in csv.DictReader(fh)] == [r["movement"] for r in rows]


def test_uninstalled_plugin_is_gone():
    datasets = {d["dataset"] for d in json.loads(run_sd("datasets", "--json").stdout)}
    assert "eyes" not in datasets and "tapping" not in datasets
