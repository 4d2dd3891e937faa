"""The preprocessing pipeline on a test-only dataset plugin writing synthetic EDF recordings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sd_testeeg
from conftest import make_fake_dist, read_rows, run_sd, small_prep

from sd_core.errors import SdError
from sd_core.preprocess import merge_dataset, preprocess_dataset
from sd_core.preprocess.runner import Shard

ARGS = ["--fs", "125", "--nsamps", "500", "--overlap", "0.5", "--resolution", "128"]


def prep(**kw):
    return small_prep(**{"fs": 125.0, "nsamps": 500, "resolution": 128, **kw})


PLUGIN = sd_testeeg.TestEEG()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {"event_overlap": 0.5}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw") / "testeeg"
    events = sd_testeeg.write_testeeg(root, seed=1, n_subjects=6, seconds=30.0, runs=2)
    return root, events


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    make_fake_dist(site, "sd-testeeg", "sd_testeeg", (Path(__file__).parent / "sd_testeeg.py").read_text())
    return site


@pytest.fixture(scope="module")
def reference(raw, tmp_path_factory) -> Path:
    """One uninterrupted single-worker run, the reference for the other runs."""
    out = tmp_path_factory.mktemp("ref") / "testeeg"
    preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS)
    return out


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


rows = read_rows


def assert_same_tree(a: Path, b: Path) -> None:
    """Byte-identical trees, but for the plugin's version in preprocess.json (and so the
    manifest's hash of it): it is recorded where the plugin runs as an installed distribution
    (the command-line runs, with the fake ``sd-testeeg`` distribution), not where it is imported
    from the tests (the in-process runs)."""
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb)
    differing = [k for k in ta if ta[k] != tb[k]]
    if "preprocess.json" in differing:
        ja, jb = (json.loads(t["preprocess.json"]) for t in (ta, tb))
        assert {ja["versions"].pop("sd-testeeg", None), jb["versions"].pop("sd-testeeg", None)} == {None, "0.0.1"}
        assert ja == jb
        wa, wb = (json.loads(t[".sd/written.json"])["files"] for t in (ta, tb))
        wa.pop("preprocess.json"), wb.pop("preprocess.json")
        assert wa == wb
        differing = [k for k in differing if k not in ("preprocess.json", ".sd/written.json")]
    assert not differing, f"files differ: {differing[:5]}"


# -- layout, labels, splits ---------------------------------------------------------------------

def test_layout_metadata_and_labels(raw, reference):
    root, events = raw
    meta = rows(reference / "metadata.csv")
    assert list(meta[0])[:10] == ["file_name", "split", "dataset", "subject", "gender", "health", "age",
                                  "recording", "window", "start"]
    assert list(meta[0])[-1] == "caption"
    # 6 subjects × 2 runs × windows of 4 s every 2 s over 30 s = 14 windows per run
    assert len(meta) == 6 * 2 * 14
    for split in ("train", "val", "test"):
        part = rows(reference / f"{split}-metadata.csv")
        assert part and all(r["split"] == split for r in part)
        for r in part:
            assert (reference / r["file_name"]).is_file()
            assert r["file_name"] == f"{split}/{r['subject']}/{r['recording']}-{r['window']}.png"
    subjects_per_split = {}
    for r in meta:
        subjects_per_split.setdefault(r["subject"], set()).add(r["split"])
    assert all(len(s) == 1 for s in subjects_per_split.values())  # no subject in two splits
    # every window's event label is exactly what the writer put there
    for r in meta:
        spans = events[root / r["subject"] / f"{r['recording']}.edf"]
        a = float(r["start"])
        overlap = sum(max(0.0, min(a + 4.0, e1) - max(a, e0)) for e0, e1 in spans)
        assert int(r["event"]) == int(overlap >= 2.0), r
    assert sum(int(r["event"]) for r in meta) >= 6 * 4  # every subject has ~5 event windows
    s0 = next(r for r in meta if r["subject"] == "S00")
    assert s0["gender"] == "F" and s0["age"] == "20" and s0["health"] == "H"
    assert s0["caption"] == "an EEG spectrogram of a 20 year old, healthy, female subject"

    info = json.loads((reference / "preprocess.json").read_text())
    assert info["parameters"]["fs"] == 125.0 and info["parameters"]["units"] == "V"
    # 256 Hz -> 125 Hz is no integer factor: the polyphase resampler, said in the notes
    notes = [n for s in info["subjects"].values() for n in s["notes"]]
    assert len(notes) == 6 * 2 and all("not an integer ratio" in n for n in notes)
    assert {"sd-core", "numpy", "mne"} <= set(info["versions"])
    assert all(s["status"] == "done" for s in info["subjects"].values())
    assert sum(info["images"].values()) == len(meta)


def test_event_windows_look_different(reference):
    """The discharge (3 Hz, 150 µV) lights the image row of 3 Hz in event windows."""
    from PIL import Image

    from sd_core.spectrogram import log_frequencies

    freqs = log_frequencies(128)  # cycles/sample of rows 1…R−1, before the flip
    row = 127 - (1 + int(np.argmin(np.abs(freqs - 3.0 / 125.0))))
    meta = rows(reference / "metadata.csv")

    def contrast(r):
        img = np.asarray(Image.open(reference / r["file_name"]), dtype=float)
        return img[row - 1:row + 2, 19:109].mean() - img[row - 12:row + 13, 19:109].mean()

    ev = [contrast(r) for r in meta if r["event"] == "1"]
    no = [contrast(r) for r in meta if r["event"] == "0"]
    assert min(ev) > max(no) - 5 and np.mean(ev) > np.mean(no) + 20


def test_images_are_the_engine_output_of_the_resampled_window(raw, reference):
    """Recompute one image from the EDF by hand: MNE read (volts), resample 256→125 (polyphase: no
    integer factor), window, engine (hop a multiple of 4, truncation)."""
    import mne
    from PIL import Image

    from sd_core.signals.resample import resample
    from sd_core.spectrogram import spectrogram_image

    r = rows(reference / "metadata.csv")[5]
    edf = mne.io.read_raw_edf(raw[0] / r["subject"] / f"{r['recording']}.edf", verbose="error")
    order = [edf.ch_names.index(f"EEG {c}") for c in sd_testeeg.CHANNELS]
    x = resample(edf.get_data(picks=order), 256.0, 125.0, "poly")
    s = int(round(float(r["start"]) * 125))
    expected = spectrogram_image(x[:, s:s + 500], resolution=128)
    got = np.asarray(Image.open(reference / r["file_name"]))
    assert got.shape == (128, 128) and got.dtype == np.uint8
    assert np.array_equal(got, expected)


# -- determinism, workers, shards -------------------------------------------------------------------

def test_rerun_is_byte_identical_and_resumes_nothing(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS)
    assert_same_tree(reference, out)
    again = preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS)
    assert again.skipped == 6 and not again.results
    assert_same_tree(reference, out)


@pytest.mark.parametrize("workers, threads", [(2, 0), (2, 1), (1, 1), (1, 3)])
def test_workers_and_threads_give_identical_results(raw, reference, tmp_path, workers, threads):
    out = tmp_path / "testeeg"
    preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS, workers=workers, threads=threads)
    assert_same_tree(reference, out)


def test_shards_then_merge_equal_one_run(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    seen = set()
    for k in (1, 2, 3):
        res = preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS, shard=Shard(k, 3))
        mine = {r.subject for r in res.results}
        assert len(mine) == 2 and not (mine & seen)
        seen |= mine
        assert res.merged == (k == 3)  # the last shard to finish finds all states and merges
    assert_same_tree(reference, out)
    # the same with shards run elsewhere and merged explicitly
    out2 = tmp_path / "elsewhere"
    parts = []
    for k in (1, 2):
        part = tmp_path / f"shard{k}"
        preprocess_dataset(PLUGIN, raw[0], part, prep(), CHANNELS, OPTIONS, shard=Shard(k, 2))
        parts.append(part)
    with pytest.raises(SdError, match="not processed yet"):
        merge_dataset(PLUGIN, parts[0])
    for part in parts:
        shutil.copytree(part, out2, dirs_exist_ok=True)
    merge_dataset(PLUGIN, out2)
    assert_same_tree(reference, out2)


def test_shard_cli_and_merge(raw, reference, plugin_site, tmp_path):
    out = tmp_path / "testeeg"
    base = ["preprocess", "--dataset", "testeeg", "--raw", str(raw[0]), "--output", str(out), *ARGS]
    r1 = run_sd(*base, "--shard", "1/2", extra_path=[plugin_site])
    assert r1.returncode == 0, r1.stderr
    assert "--merge" in r1.stdout
    assert run_sd("preprocess", "--dataset", "testeeg", "--output", str(out), "--merge",
                  extra_path=[plugin_site]).returncode == 1
    assert run_sd(*base, "--shard", "2/2", extra_path=[plugin_site]).returncode == 0
    r3 = run_sd("preprocess", "--dataset", "testeeg", "--output", str(out), "--merge", extra_path=[plugin_site])
    assert r3.returncode == 0, r3.stderr
    assert_same_tree(reference, out)


# -- robustness ---------------------------------------------------------------------------------

def _count_pngs(folder: Path) -> int:
    return sum(1 for _ in folder.rglob("*.png")) if folder.exists() else 0


@pytest.mark.parametrize("kill_after_images", [0, 30, 100])
def test_resume_after_sigkill_is_byte_identical(raw, reference, plugin_site, tmp_path, kill_after_images):
    out = tmp_path / "testeeg"
    cmd = [sys.executable, "-m", "sd_core", "preprocess", "--dataset", "testeeg", "--raw", str(raw[0]),
           "--output", str(out), *ARGS]
    env = {**os.environ, "PYTHONPATH": str(plugin_site)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _count_pngs(out) < kill_after_images and time.monotonic() < deadline:
        time.sleep(0.01)
    if kill_after_images == 0:
        time.sleep(1.0)  # during start-up and discovery
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "metadata.csv").exists() or kill_after_images == 0
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert_same_tree(reference, out)
    assert not list(out.rglob("*.tmp"))


def test_other_parameters_refused_unless_overwrite(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    with pytest.raises(SdError, match=r"other parameters \(nsamps 500 → 250"):
        preprocess_dataset(PLUGIN, raw[0], out, prep(nsamps=250), CHANNELS, OPTIONS)
    (out / "my-notes.txt").write_text("keep me")
    (out / "train" / "S99").mkdir(parents=True)
    res = preprocess_dataset(PLUGIN, raw[0], out, prep(nsamps=250), CHANNELS, OPTIONS, overwrite=True)
    assert res.merged
    assert (out / "my-notes.txt").read_text() == "keep me"
    assert (out / "train" / "S99").is_dir()  # not written by sd: kept
    assert json.loads((out / "preprocess.json").read_text())["parameters"]["nsamps"] == 250


def test_overwrite_refuses_an_output_folder_containing_the_raw_data(raw, tmp_path, plugin_site):
    outer = tmp_path / "project"
    raw_inside = outer / "raw"
    shutil.copytree(raw[0], raw_inside)
    with pytest.raises(SdError, match="contains the raw data"):
        preprocess_dataset(PLUGIN, raw_inside, outer, prep(), CHANNELS, OPTIONS, overwrite=True)
    assert len(list(raw_inside.rglob("*.edf"))) == 12  # nothing deleted
    res = run_sd("preprocess", "--dataset", "testeeg", "--raw", str(raw_inside), "--output", str(raw_inside),
                 "--overwrite", *ARGS, extra_path=[plugin_site])
    assert res.returncode == 1 and "contains the raw data" in res.stderr


def test_bad_recordings_are_reported_and_the_rest_finish(raw, tmp_path, plugin_site):
    root = tmp_path / "raw"
    shutil.copytree(raw[0], root)
    truncated = root / "S02" / "S02_run0.edf"
    truncated.write_bytes(truncated.read_bytes()[:3000])
    (root / "S04" / "S04_run1.edf").write_bytes(b"this is not an EDF file")
    shutil.rmtree(root / "S05")  # a subject in the table without recordings
    out = tmp_path / "out"
    res = run_sd("preprocess", "--dataset", "testeeg", "--raw", str(root), "--output", str(out), *ARGS,
                 extra_path=[plugin_site])
    assert res.returncode == 3, res.stderr  # some subjects failed or stayed partial: not success
    assert "Traceback" not in res.stdout + res.stderr
    assert "S02/S02_run0" in res.stdout and "S04/S04_run1" in res.stdout and "S05" in res.stdout
    info = json.loads((out / "preprocess.json").read_text())
    status = {s: v["status"] for s, v in info["subjects"].items()}
    assert status == {"S00": "done", "S01": "done", "S02": "partial", "S03": "done", "S04": "partial",
                      "S05": "failed"}
    meta = rows(out / "metadata.csv")
    assert {r["recording"] for r in meta if r["subject"] == "S02"} == {"S02_run1"}
    assert len(meta) == (3 * 2 + 1 + 1) * 14  # S00, S01, S03 whole; one run of S02 and S04


def test_missing_channels_are_named(raw, tmp_path):
    out = tmp_path / "out"
    res = preprocess_dataset(PLUGIN, raw[0], out, prep(), [*CHANNELS[:3], "Oz"], OPTIONS)
    assert all(r.status == "failed" for r in res.results)
    assert "lacks channel(s) Oz" in res.errors[0]


def test_sizes_that_cannot_fit_are_refused_before_work(raw, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SdError) as exc:
        preprocess_dataset(PLUGIN, raw[0], out, prep(resolution=16), CHANNELS, OPTIONS)
    assert "19" in str(exc.value) and "16" in str(exc.value)
    assert not out.exists()


def test_missing_raw_root_is_a_clear_error(tmp_path, plugin_site):
    res = run_sd("preprocess", "--dataset", "testeeg", "--raw", str(tmp_path / "nope"), "--output",
                 str(tmp_path / "o"), extra_path=[plugin_site])
    assert res.returncode == 1
    assert "not found" in res.stderr and "Traceback" not in res.stderr


def test_pinned_split_file(raw, tmp_path):
    pin = tmp_path / "splits.csv"
    pin.write_text("subject,split\nS00,test\nS01,test\nS02,val\nS03,train\nS04,train\nS05,train\n")
    out = tmp_path / "out"
    preprocess_dataset(PLUGIN, raw[0], out, prep(), CHANNELS, OPTIONS, split_file=pin)
    got = {r["subject"]: r["split"] for r in rows(out / "metadata.csv")}
    assert got == {"S00": "test", "S01": "test", "S02": "val", "S03": "train", "S04": "train", "S05": "train"}
    pin.write_text("subject,split\nS00,test\nS01,test\nS02,val\nS03,train\nS00,train\n")
    with pytest.raises(SdError, match="line 6: subject S00 is assigned twice \\(test and train\\)"):
        preprocess_dataset(PLUGIN, raw[0], tmp_path / "out3", prep(), CHANNELS, OPTIONS, split_file=pin)
    pin.write_text("subject,split\nS00,test\n")
    with pytest.raises(SdError, match="does not assign 5 subject"):
        preprocess_dataset(PLUGIN, raw[0], tmp_path / "out2", prep(), CHANNELS, OPTIONS, split_file=pin)


def test_overwrite_with_a_missing_raw_root_deletes_nothing(reference, tmp_path):
    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    with pytest.raises(SdError, match="not found"):
        preprocess_dataset(PLUGIN, tmp_path / "typo", out, prep(), CHANNELS, OPTIONS, overwrite=True)
    assert_same_tree(reference, out)


def test_a_resolution_that_cannot_fit_memory_is_refused_before_any_work(raw, tmp_path):
    """--resolution 100000 used to end in a MemoryError traceback (issue 31, item 7)."""
    from sd_core.errors import SdError

    with pytest.raises(SdError, match=r"resolution 100000 would take about [0-9.]+ GiB of memory; this machine has"):
        preprocess_dataset(PLUGIN, raw[0], tmp_path / "out", prep(resolution=100000), CHANNELS, OPTIONS)
    assert not (tmp_path / "out").exists()


# -- a kill at any instant (issue 31, item 4) -------------------------------------------------------

def _kill_preprocess(root: Path, out: Path, when, site: Path, workers: int) -> None:
    """sd preprocess killed (-9) at ``when`` (seconds, or as soon as that file appears), then run again."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "sd_core", "preprocess", "--dataset", "testeeg", "--raw", str(root), "--output",
           str(out), "--workers", str(workers), *ARGS]
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if isinstance(when, str):
        deadline = time.time() + 120
        while not (out / when).exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.002)
    else:
        time.sleep(when)
    p.send_signal(signal.SIGKILL)
    p.wait()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, (when, res.stdout[-2500:], res.stderr[-1500:])


@pytest.mark.parametrize("workers", [1, 2])
def test_preprocess_killed_at_any_instant_reruns_byte_identical(raw, reference, tmp_path, plugin_site, workers):
    """Killed as the first subject's state, the metadata and the manifest appear, and at a seeded
    instant: the rerun's folder is the uninterrupted run's, byte for byte."""
    import random

    whens = [".sd/subjects", "metadata.csv", ".sd/written.json", round(random.Random(workers).uniform(0.8, 2.5), 2)]
    for i, when in enumerate(whens):
        out = tmp_path / f"k{i}" / "testeeg"
        _kill_preprocess(raw[0], out, when, plugin_site, workers)
        assert_same_tree(reference, out)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_preprocess_killed_at_many_instants(raw, reference, tmp_path, plugin_site, workers):
    import random

    rng = random.Random(100 + workers)
    whens = sorted(round(rng.uniform(0.3, 3.0), 2) for _ in range(10))
    for i, when in enumerate([*whens, ".sd/subjects", "metadata.csv"]):
        out = tmp_path / f"k{i}" / "testeeg"
        _kill_preprocess(raw[0], out, when, plugin_site, workers)
        assert_same_tree(reference, out)


def test_two_preprocess_runs_on_one_output(raw, reference, tmp_path, plugin_site):
    """The second refuses at once naming the first; the first's result is the single run's (item 5)."""
    import subprocess
    import sys
    import time

    from conftest import ROOT

    out = tmp_path / "testeeg"
    env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    env["PYTHONPATH"] = os.pathsep.join([str(plugin_site), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "sd_core", "preprocess", "--dataset", "testeeg", "--raw", str(raw[0]),
           "--output", str(out), *ARGS]
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / ".sd" / "lock").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.wait(timeout=300) == 0, first.stderr.read()[-1500:]
    assert second.returncode == 1 and f"is in use by pid {first.pid}" in second.stderr, second.stderr[-1500:]
    assert_same_tree(reference, out)
