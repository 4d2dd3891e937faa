"""Preprocessing deletes and replaces only what it wrote, and survives failing workers (issue 11,
findings 2 and 3): regression tests for each reproduction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sd_badeeg
import sd_testeeg
from conftest import make_fake_dist, run_sd
from test_preprocess import ARGS, CHANNELS, OPTIONS, PLUGIN, assert_same_tree, plugin_site, prep, tree  # noqa: F401

from sd_core.errors import SdError
from sd_core.preprocess import merge_dataset, preprocess_dataset
from sd_core.preprocess.runner import Shard

TESTS = Path(__file__).parent


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "testeeg"
    sd_testeeg.write_testeeg(root, seed=2, n_subjects=4, seconds=21.0, runs=1)
    return root


@pytest.fixture(scope="module")
def reference(raw, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "testeeg"
    preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS)
    return out


@pytest.fixture(scope="module")
def bad_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    make_fake_dist(site, "sd-badeeg", "sd_badeeg", (TESTS / "sd_badeeg.py").read_text())
    return site


def user_files(out: Path) -> dict[Path, str]:
    files = {out / "test" / "test_mycode.py": "def test_mine(): pass\n",
             out / "train" / "notes.txt": "my notes\n", out / ".sd" / "mine.txt": "mine\n"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return files


def test_overwrite_deletes_only_files_sd_wrote(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    mine = user_files(out)
    res = preprocess_dataset(PLUGIN, raw, out, prep(nsamps=250), CHANNELS, OPTIONS, overwrite=True)
    assert res.merged and not res.errors
    for path, text in mine.items():
        assert path.read_text() == text, path
    meta = (out / "metadata.csv").read_text().splitlines()
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert len(pngs) == len(meta) - 1  # every old image went; the new ones are all listed
    assert all(p.split("-")[-1] for p in pngs)
    # the same through the CLI's --overwrite and back to the first parameters
    res = preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, overwrite=True)
    for path, text in mine.items():
        assert path.read_text() == text, path
    for path in mine:
        path.unlink()
    assert_same_tree(reference, out)


def test_a_changed_image_stops_overwrite_before_anything_is_deleted(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    victim = sorted(out.rglob("*.png"))[3]
    victim.write_bytes(b"my edited picture")
    before = tree(out)
    with pytest.raises(SdError, match=f"{victim}.*changed since sd wrote it"):
        preprocess_dataset(PLUGIN, raw, out, prep(nsamps=250), CHANNELS, OPTIONS, overwrite=True)
    assert tree(out) == before


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("name", ["metadata.csv", "train-metadata.csv"])
def test_a_users_metadata_file_is_never_replaced(raw, tmp_path, name, overwrite):
    out = tmp_path / "testeeg"
    out.mkdir()
    (out / name).write_text("my,own\n1,2\n")
    with pytest.raises(SdError, match=f"{out / name} was not written by sd"):
        preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, overwrite=overwrite)
    assert (out / name).read_text() == "my,own\n1,2\n"


def test_a_users_file_where_an_image_goes_is_not_replaced(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    shutil.rmtree(out / ".sd")
    for name in ("metadata.csv", "train-metadata.csv", "val-metadata.csv", "test-metadata.csv",
                 "preprocess.json", "train/metadata.csv", "val/metadata.csv", "test/metadata.csv"):
        (out / name).unlink(missing_ok=True)
    first = sorted(out.rglob("*.png"))[0]
    first.write_bytes(b"mine")
    res = preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, overwrite=True)
    assert first.read_bytes() == b"mine"
    assert any(f"{first} was not written by sd" in e for e in res.errors), res.errors


def test_overwrite_of_one_shard_keeps_the_other_shards(raw, reference, tmp_path):
    out = tmp_path / "testeeg"
    for k in (1, 2):
        preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, shard=Shard(k, 2))
    shard1 = {k: v for k, v in tree(out).items() if any(s in k for s in ("S00", "S02"))}
    res = preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, shard=Shard(2, 2), overwrite=True)
    assert sorted(r.subject for r in res.results) == ["S01", "S03"] and res.merged
    after = tree(out)
    assert {k: after[k] for k in shard1} == shard1
    assert_same_tree(reference, out)
    # other parameters with one shard would mix two runs: refused, nothing deleted
    with pytest.raises(SdError, match="other shards made with other parameters"):
        preprocess_dataset(PLUGIN, raw, out, prep(nsamps=250), CHANNELS, OPTIONS, shard=Shard(1, 2),
                           overwrite=True)
    assert tree(out) == after


def test_overwrite_of_one_shard_from_another_set_of_subjects(raw, tmp_path):
    """--overwrite --shard on a folder made from other subjects starts the run again when no other
    shard's subjects are there (it used to say "use --overwrite" to a command that had it), and
    refuses, deleting nothing, when they are."""
    fewer = tmp_path / "fewer"
    shutil.copytree(raw, fewer)
    shutil.rmtree(fewer / "S03")
    table = fewer / "participants.csv"
    table.write_text("".join(line for line in table.read_text().splitlines(True) if not line.startswith("S03")))
    out = tmp_path / "testeeg"
    preprocess_dataset(PLUGIN, fewer, out, prep(), CHANNELS, OPTIONS, shard=Shard(1, 2))
    res = preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, shard=Shard(1, 2), overwrite=True)
    assert sorted(r.subject for r in res.results) == ["S00", "S02"] and not res.errors
    params = json.loads((out / ".sd" / "params.json").read_text())
    assert sorted(params["splits"]) == ["S00", "S01", "S02", "S03"]
    preprocess_dataset(PLUGIN, fewer, tmp_path / "both", prep(), CHANNELS, OPTIONS)
    before = tree(tmp_path / "both")
    with pytest.raises(SdError, match="other shards made from other subjects"):
        preprocess_dataset(PLUGIN, raw, tmp_path / "both", prep(), CHANNELS, OPTIONS, shard=Shard(2, 2),
                           overwrite=True)
    assert tree(tmp_path / "both") == before


# -- workers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "testeeg"
    sd_testeeg.write_testeeg(root, seed=3, n_subjects=200, seconds=5.0, runs=1, events=False)
    return root


def test_many_tiny_subjects_with_two_workers_three_runs_in_a_row(tiny_raw, tmp_path):
    """The race of the README's first command: a worker deleting another's temporary state."""
    for run in range(3):
        out = tmp_path / f"out{run}"
        res = preprocess_dataset(PLUGIN, tiny_raw, out, prep(nsamps=250, resolution=64), CHANNELS[:8],
                                 OPTIONS, workers=2)
        assert res.merged and not res.errors and len(res.results) == 200, res.errors[:3]
        info = json.loads((out / "preprocess.json").read_text())
        assert {v["status"] for v in info["subjects"].values()} == {"done"}
    assert tree(tmp_path / "out0") == tree(tmp_path / "out2")


def test_a_killed_worker_is_retried_once_in_a_fresh_process(raw, reference, tmp_path, monkeypatch):
    monkeypatch.setenv("BADEEG_KILL", "S01")
    monkeypatch.setenv("BADEEG_ONCE", str(tmp_path / "killed-once"))
    out = tmp_path / "testeeg"
    res = preprocess_dataset(sd_badeeg.BadEEG(), raw, out, prep(), CHANNELS, OPTIONS, workers=2)
    assert (tmp_path / "killed-once").exists()
    assert res.merged and not res.errors
    # the same images as an undisturbed run (the data set name differs in the metadata)
    ref_png = {k: v for k, v in tree(reference).items() if k.endswith(".png")}
    assert {k: v for k, v in tree(out).items() if k.endswith(".png")} == ref_png


def test_a_worker_killed_twice_is_reported_and_the_rest_merge(raw, tmp_path, bad_site):
    out = tmp_path / "out"
    res = run_sd("preprocess", "--dataset", "badeeg", "--raw", str(raw), "--output", str(out), *ARGS,
                 "--workers", "2", extra_path=[bad_site, TESTS], env={"BADEEG_KILL": "S02"})
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert "S02: its worker process died twice" in res.stdout
    info = json.loads((out / "preprocess.json").read_text())
    assert {s: v["status"] for s, v in info["subjects"].items()} == {
        "S00": "done", "S01": "done", "S02": "failed", "S03": "done"}


def test_plugin_bugs_and_sys_exit_are_named_with_hook_file_and_line(raw, tmp_path, bad_site):
    out = tmp_path / "out"
    env = {"BADEEG_BUG": "S01", "BADEEG_EXIT": "S03"}
    for workers in ("1", "2"):
        shutil.rmtree(out, ignore_errors=True)
        res = run_sd("preprocess", "--dataset", "badeeg", "--raw", str(raw), "--output", str(out), *ARGS,
                     "--workers", workers, extra_path=[bad_site, TESTS], env=env)
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stdout + res.stderr
        text = " ".join(res.stdout.split())
        assert ("S01/S01_run0: plugin 'badeeg' failed in label_windows (sd_badeeg.py:"
                in text and "ZeroDivisionError" in text), text
        assert "S03/S03_run0: plugin 'badeeg' called sys.exit(3)" in text
        assert "unreadable" not in text
        info = json.loads((out / "preprocess.json").read_text())
        assert info["subjects"]["S00"]["status"] == "done"
        assert "ZeroDivisionError" in info["subjects"]["S01"]["tracebacks"][0]
    res = run_sd("preprocess", "--dataset", "badeeg", "--raw", str(raw), "--output", str(tmp_path / "o2"),
                 *ARGS, extra_path=[bad_site, TESTS], env={**env, "SD_DEBUG": "1"})
    assert "Traceback (most recent call last)" in res.stderr and "1 // 0" in res.stderr


def test_an_unpicklable_plugin_is_a_clear_error(raw, tmp_path):
    plugin = sd_testeeg.TestEEG()
    plugin.hook = lambda x: x  # a lambda cannot travel to a worker process
    with pytest.raises(SdError, match="cannot be sent to worker processes.*--workers 1"):
        preprocess_dataset(plugin, raw, tmp_path / "out", prep(), CHANNELS, OPTIONS, workers=2)


def test_merge_after_a_failed_subject(raw, tmp_path, monkeypatch):
    monkeypatch.setenv("BADEEG_BUG", "S00,S01,S02,S03")
    out = tmp_path / "out"
    res = preprocess_dataset(sd_badeeg.BadEEG(), raw, out, prep(), CHANNELS, OPTIONS, workers=2)
    assert res.merged and len(res.faults) == 4
    assert merge_dataset(sd_badeeg.BadEEG(), out) == {"train": 0, "val": 0, "test": 0}


# -- sd demo ------------------------------------------------------------------------------------

def test_demo_never_writes_into_a_users_folders(tmp_path):
    work = tmp_path / "project"
    raw = work / "raw" / "math"
    raw.mkdir(parents=True)
    (raw / "Subject00_1.edf").write_bytes(b"my real recording")
    (raw / "subject-info.csv").write_text("mine\n")
    res = run_sd("demo", "--workdir", str(work), "-d", "math", "--skip-training")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"{work} holds files the demo did not write" in " ".join(res.stderr.split())
    assert (raw / "Subject00_1.edf").read_bytes() == b"my real recording"
    # inside the demo's own folder, a raw folder the user made is still not written into
    (work / ".sd-demo").write_text("")
    res = run_sd("demo", "--workdir", str(work), "-d", "math", "--skip-training")
    assert res.returncode == 1
    assert f"{raw} holds files the demo did not write" in " ".join(res.stdout.split())
    assert (raw / "Subject00_1.edf").read_bytes() == b"my real recording"
    assert (raw / "subject-info.csv").read_text() == "mine\n"
    assert sorted(p.name for p in raw.iterdir()) == ["Subject00_1.edf", "subject-info.csv"]


def test_a_subject_folder_replaced_by_a_symlink_is_never_written_through(raw, reference, tmp_path):
    """Issue 31, item 2: the user's folder behind the link keeps exactly its files."""
    import os

    out = tmp_path / "testeeg"
    shutil.copytree(reference, out)
    subject = next(p for p in (out / "train").iterdir() if p.is_dir())
    mine = tmp_path / "mine"
    shutil.copytree(subject, mine)  # files of the same names: what sd would have written there
    before = tree(mine)
    shutil.rmtree(subject)
    os.symlink(mine, subject)
    with pytest.raises(SdError, match=rf"{subject} is a symbolic link \(to {mine}\); sd does not write or delete"):
        preprocess_dataset(PLUGIN, raw, out, prep(nsamps=250), CHANNELS, OPTIONS, overwrite=True)
    assert tree(mine) == before and subject.is_symlink()


@pytest.fixture()
def small_disk(tmp_path):
    """A real file system of its own (tmpfs), to fill or make read-only; skipped where this
    process may not mount (CI runs as root on this machine kind)."""
    import subprocess

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_full_disk_stops_cleanly_and_the_rerun_completes(raw, reference, small_disk, plugin_site, workers):
    """Issue 31, item 6: one line naming the file; with space again the rerun gives the
    uninterrupted run's folder byte for byte."""
    import subprocess

    out = small_disk / "testeeg"
    args = ["preprocess", "--dataset", "testeeg", "--raw", str(raw), "--output", str(out), "--workers",
            str(workers), *ARGS]
    res = run_sd(*args, extra_path=[plugin_site])
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}") and "no space left on the device" in last
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    res = run_sd(*args, extra_path=[plugin_site])
    assert res.returncode == 0, res.stderr[-2000:]
    assert_same_tree(reference, out)


def test_a_read_only_output_is_one_line(raw, small_disk, plugin_site):
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    res = run_sd("preprocess", "--dataset", "testeeg", "--raw", str(raw), "--output", str(small_disk / "testeeg"),
                 *ARGS, extra_path=[plugin_site])
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1] == (f"error: {small_disk / 'testeeg'}: the file system is read-only; "
                                                   "what was finished before is kept")
