"""Run folders are safe to read and to write into (issue 11, findings 1 and 2).

* No file `sd` reads from a run folder is unpickled: a checkpoint file crafted to run code does
  not, and a damaged one ends in a one-line error naming it, in every command that reads runs.
* Classifier and diffusion runs share one checkpoint format (safetensors + JSON).
* Pruning removes only checkpoint folders the run wrote; a user's folders stay.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from conftest import run_sd
from layout_data import math_like
from test_diffusion import ONE_THREAD, write_cfg, write_processed
from test_train import experiment


class Payload:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def poison(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Payload(marker)))


def one_line_error(res, names: Path) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip() and not ln.startswith("warning")]
    assert len(lines) <= 2 and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    assert str(names) in " ".join(lines).replace("\n", ""), (names, res.stderr)
    return " ".join(lines)


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("clf")
    math_like(work / "data" / "math")
    (work / "run" / "checkpoints" / "my-best-model-2023").mkdir(parents=True)
    (work / "run" / "checkpoints" / "my-best-model-2023" / "model.safetensors").write_bytes(b"mine")
    (work / "run" / "checkpoints" / "other").mkdir()
    cfg = experiment(work, work / "data", epochs=3, training='eval_strategy = "epoch"\nbest_k = 1')
    res = run_sd("train", str(cfg), "--out", str(work / "run"), cwd=work, env=ONE_THREAD)
    assert res.returncode == 0, res.stderr
    return work / "run"


def test_pruning_keeps_folders_the_run_did_not_write(classifier_run):
    ck = classifier_run / "checkpoints"
    assert (ck / "my-best-model-2023" / "model.safetensors").read_bytes() == b"mine"
    assert (ck / "other").is_dir()
    state = json.loads((classifier_run / "state.json").read_text())
    ours = sorted(p.name for p in ck.iterdir() if p.name.startswith("step-"))
    assert ours == sorted(state["written"]) == sorted({state["latest"], *(n for _, n in state["best"])})
    latest = ck / state["latest"]
    # one format: safetensors and JSON only
    assert sorted(p.suffix for p in latest.iterdir()) == sorted(
        [".json", ".json", ".json", ".json", ".safetensors", ".safetensors", ".safetensors"])


@pytest.mark.parametrize("target", ["optimizer.safetensors", "optimizer.json", "scheduler.json",
                                    "rng-0.safetensors", "model.safetensors", "position.json"])
def test_poisoned_classifier_checkpoint_is_refused_by_name(classifier_run, tmp_path, target):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(classifier_run, run)
    state = json.loads((run / "state.json").read_text())
    # the run is finished; make it resumable from its latest checkpoint
    state["finished"] = False
    (run / "state.json").write_text(json.dumps(state))
    folder = run / "checkpoints" / state["latest"]
    marker = tmp_path / "pwned"
    poison(folder / target, marker)
    cfg = run / "config.toml"
    res = run_sd("train", str(cfg), "--out", str(run), "--resume", cwd=tmp_path, env=ONE_THREAD)
    one_line_error(res, folder / target)
    assert not marker.exists()
    if target == "model.safetensors":
        res = run_sd("evaluate-run", str(run), "--checkpoint", state["latest"], cwd=tmp_path)
        one_line_error(res, folder / target)
    assert not marker.exists()


def test_damaged_run_files_are_named(classifier_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(classifier_run, run)
    (run / "state.json").write_bytes(b"\x80\x04garbage")
    one_line_error(run_sd("evaluate-run", str(run), cwd=tmp_path), run / "state.json")
    shutil.copy(classifier_run / "state.json", run / "state.json")
    (run / "run.json").write_text("{not json")
    one_line_error(run_sd("evaluate-run", str(run), cwd=tmp_path), run / "run.json")


def test_new_run_refuses_a_folder_with_files_it_did_not_write(tmp_path):
    math_like(tmp_path / "data" / "math")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text('{"mine": 1}')
    cfg = experiment(tmp_path, tmp_path / "data", epochs=1)
    res = run_sd("train", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path, env=ONE_THREAD)
    one_line_error(res, tmp_path / "run" / "metrics.json")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {"mine": 1}


# -- diffusion -------------------------------------------------------------------------------

def _train_diffusion(cfg: Path, resume: bool = False, on_step=None):
    from sd_core.config import load_config
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.train import train_diffusion

    return train_diffusion(load_diffusion_experiment(cfg), load_config(None), resume=resume, on_step=on_step)


@pytest.fixture(scope="module")
def diffusion_parts(tmp_path_factory):
    """An interrupted diffusion run (checkpoint at step 4) and a finished one, with user folders."""
    from sd_core.diffusion.train import StopTraining

    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("diff")
    data = write_processed(work / "parkinsons", per_class=8)
    kw = dict(steps=8, checkpoint_steps=2, keep_checkpoints=1, ema_decay=0.9, sample_solver_steps=2,
              samples_per_condition=1)
    part = write_cfg(work / "part.toml", data, work / "part", **kw)

    def stop(step, loss):
        if step == 4:
            raise StopTraining

    with pytest.raises(StopTraining):
        _train_diffusion(part, on_step=stop)
    full_cfg = write_cfg(work / "full.toml", data, work / "full", **kw)
    (work / "full" / "checkpoints" / "keep-me").mkdir(parents=True)
    _train_diffusion(full_cfg)
    return work, part


def test_diffusion_checkpoints_are_pickle_free_and_pruned_safely(diffusion_parts):
    work, _ = diffusion_parts
    ck = work / "full" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["keep-me", "step-000008"]
    files = sorted(p.name for p in (ck / "step-000008").iterdir())
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".bin"))], files
    assert {"model.safetensors", "optimizer.json", "optimizer.safetensors", "scheduler.json",
            "ema.json", "ema.safetensors", "position.json", "trainer.json"} <= set(files)


def test_diffusion_resume_never_unpickles(diffusion_parts, tmp_path):
    import shutil

    work, part_cfg = diffusion_parts
    run = tmp_path / "part"

    def copy_run():
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(work / "part", run)
        saved = run / "config.toml"
        saved.write_text(saved.read_text().replace(str(work / "part"), str(run)))

    copy_run()
    cfg = tmp_path / "part.toml"
    cfg.write_text(part_cfg.read_text().replace(str(work / "part"), str(run)))
    folder = run / "checkpoints" / "step-000004"
    marker = tmp_path / "pwned"
    # what accelerate's load_state used to unpickle
    for name in ("custom_checkpoint_0.pkl", "custom_checkpoint_1.pkl", "random_states_0.pkl"):
        poison(folder / name, marker)
    res = _train_diffusion(cfg, resume=True)
    assert res["start"] == 4 and res["steps"] == 8 and not marker.exists()
    # a damaged state file is named, on the command line too
    copy_run()
    poison(folder / "ema.safetensors", marker)
    res = run_sd("diffusion", "train", str(cfg), "--resume", cwd=tmp_path, env=ONE_THREAD)
    one_line_error(res, folder / "ema.safetensors")
    assert not marker.exists()


@pytest.mark.parametrize("target", ["unet/diffusion_pytorch_model.safetensors",
                                    "conditioning/conditioning.safetensors", "labels.json",
                                    "scheduler/scheduler_config.json", "conditioning/config.json"])
def test_generate_names_a_damaged_run_file(diffusion_parts, tmp_path, target):
    import shutil

    work, _ = diffusion_parts
    run = tmp_path / "run"
    shutil.copytree(work / "full", run)
    marker = tmp_path / "pwned"
    poison(run / target, marker)
    res = run_sd("generate", str(run), "--n", "2", "--steps", "2", "--out", str(tmp_path / "g"),
                 cwd=tmp_path, env=ONE_THREAD)
    name = run / target if target.endswith(("json", "conditioning.safetensors")) else run / "unet"
    one_line_error(res, name)
    assert not marker.exists()


def test_generate_overwrite_deletes_only_what_it_wrote(diffusion_parts, tmp_path):
    work, _ = diffusion_parts
    out = tmp_path / "gen"
    args = ["generate", str(work / "full"), "--n", "4", "--steps", "2", "--out", str(out)]
    assert run_sd(*args, cwd=tmp_path, env=ONE_THREAD).returncode == 0
    mine = {out / "train" / "notes.txt": "notes\n", out / "test" / "test_mycode.py": "x = 1\n",
            out / ".sd" / "mine.txt": "mine\n"}
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    res = run_sd(*args, cwd=tmp_path, env=ONE_THREAD)
    assert res.returncode == 1 and "--overwrite" in res.stderr
    res = run_sd(*args, "--overwrite", "--n", "2", cwd=tmp_path, env=ONE_THREAD)
    assert res.returncode == 0, res.stderr
    for path, text in mine.items():
        assert path.read_text() == text
    assert len(list(out.rglob("*.png"))) == 2
    # a user's folder (here with a metadata.csv where a new set would go) is refused by name
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.csv").write_text("mine\n")
    res = run_sd("generate", str(work / "full"), "--n", "2", "--steps", "2", "--out", str(other),
                 cwd=tmp_path, env=ONE_THREAD)
    assert "is not empty and sd did not create it" in one_line_error(res, other)
    assert (other / "metadata.csv").read_text() == "mine\n" and not list(other.rglob("*.png"))


@pytest.mark.parametrize("field, value", [("written", ["../../victim"]), ("latest", "../victim"),
                                          ("best", [[0.5, "/tmp"]])])
def test_state_names_outside_the_run_delete_nothing(classifier_run, tmp_path, field, value):
    """Pruning deletes by the names in state.json: a crafted name stops --resume first (issue 31)."""
    import shutil

    run = tmp_path / "a" / "b" / "run"
    shutil.copytree(classifier_run, run)
    victim = tmp_path / "a" / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "finished": False, field: value}))
    res = run_sd("train", str(run / "config.toml"), "--out", str(run), "--resume", cwd=tmp_path, env=ONE_THREAD)
    text = one_line_error(res, run / "state.json")
    assert f"{field} names" in text and "nothing was deleted" in text
    assert (victim / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(
        p.name for p in (classifier_run / "checkpoints").iterdir())


def test_diffusion_state_names_outside_the_run_delete_nothing(diffusion_parts, tmp_path):
    import shutil

    work, part_cfg = diffusion_parts
    run = tmp_path / "part"
    shutil.copytree(work / "part", run)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data.csv").write_text("1,2\n")
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "written": [*state["written"], "../../victim"]}))
    cfg = tmp_path / "part.toml"
    cfg.write_text(part_cfg.read_text().replace(str(work / "part"), str(run)))
    res = run_sd("diffusion", "train", str(cfg), "--resume", cwd=tmp_path, env=ONE_THREAD)
    one_line_error(res, run / "state.json")
    assert (victim / "data.csv").read_text() == "1,2\n"


def test_diffusion_train_killed_before_its_first_checkpoint_starts_again(diffusion_parts, tmp_path):
    """A kill once config.toml is written (no checkpoint yet) used to leave a folder that --resume
    called "no run to continue" and a new start refused (issue 31, item 4): now either command
    begins it again, and it ends with the uninterrupted run's weights."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    work, part_cfg = diffusion_parts
    whole = work / "full" / "unet" / "diffusion_pytorch_model.safetensors"
    full_cfg = (work / "full.toml").read_text()
    for i, again in enumerate(([], ["--resume"])):
        run = tmp_path / f"run{i}"
        cfg = tmp_path / f"cfg{i}.toml"
        cfg.write_text(full_cfg.replace(str(work / "full"), str(run)))
        env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
        env.update(ONE_THREAD)
        p = subprocess.Popen([sys.executable, "-m", "sd_core", "diffusion", "train", str(cfg)], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not (run / "config.toml").exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert not (run / "state.json").exists()
        res = run_sd("diffusion", "train", str(cfg), *again, cwd=tmp_path, env=ONE_THREAD)
        assert res.returncode == 0, (again, res.stderr[-1500:])
        assert (run / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == whole.read_bytes()
