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


@pytest.fixture
def installed_eyes(tmp_path):
    files = guide_files()
    assert {"sd-eyes/pyproject.toml", "sd-eyes/sd_eyes/plugin.py", "sd-eyes/sd_eyes/__init__.py"} <= set(files)
    for rel, body in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(body)
    res = pip("install", "--no-deps", "--no-build-isolation", str(tmp_path / "sd-eyes"))
    assert res.returncode == 0, res.stdout + res.stderr
    try:
        yield tmp_path
    finally:
        res = pip("uninstall", "-y", "sd-eyes")
        assert res.returncode == 0, res.stderr


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


def test_uninstalled_plugin_is_gone():
    datasets = {d["dataset"] for d in json.loads(run_sd("datasets", "--json").stdout)}
    assert "eyes" not in datasets
