"""Command-line manners (issue 17, point 3): progress lines when output is piped, -q/-v, --json
results, shell completion."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import make_fake_dist, run_sd
from layout_data import math_like
from test_train import experiment

FAST = {"OMP_NUM_THREADS": "1", "SD_PROGRESS_SECONDS": "0"}  # a progress line at every update


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("cli")
    math_like(work / "data" / "math")
    return work


def test_piped_train_prints_progress_lines_and_ends_with_the_latest_figures(work):
    cfg = experiment(work, work / "data", epochs=4, name="piped.toml",
                     training='eval_strategy = "steps"\neval_steps = 5\nmetric = "loss"')
    res = run_sd("train", str(cfg), "--out", str(work / "piped"), cwd=work, env=FAST)
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("train ")]
    steps = [int(m.group(1)) for ln in lines if (m := re.match(r"train (\d+)/24 ", ln))]
    assert len(steps) >= 20 and steps == sorted(steps) and steps[-1] == 24, lines[:5]
    assert all("elapsed" in ln for ln in lines)
    history = json.loads((work / "piped" / "history.json").read_text())
    last = history["eval"][-1]["val/loss"]
    assert history["eval"][-1]["step"] == 24
    assert lines[-1].endswith("elapsed]") and f"val loss {last:.3f}" in lines[-1], lines[-1]
    assert "sd train: best checkpoint" in res.stdout


@pytest.mark.slow
def test_quiet_verbose_and_json(work):
    cfg = experiment(work, work / "data", epochs=2, name="q.toml", training='eval_strategy = "epoch"')
    res = run_sd("-q", "train", str(cfg), "--out", str(work / "quiet"), cwd=work, env=FAST)
    assert res.returncode == 0, res.stderr
    assert not [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith("train ")]
    assert "sd train: best checkpoint" in res.stdout  # results still print
    res = run_sd("-v", "train", str(cfg), "--out", str(work / "verbose"), cwd=work, env=FAST)
    assert re.search(r"^step 12: val loss [\d.]+ .*math_activity/balanced_accuracy", res.stdout, re.M), res.stdout
    res = run_sd("train", str(cfg), "--out", str(work / "json"), "--json", cwd=work, env=FAST)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)  # nothing but the JSON document on stdout
    assert out["steps"] == 12 and out["best_checkpoint"].startswith("step-")
    assert 0 <= out["test"]["math_activity/balanced_accuracy"] <= 1
    assert "train 12/12" in res.stderr
    res = run_sd("evaluate-run", str(work / "json"), "--split", "val", "--json", cwd=work)
    ev = json.loads(res.stdout)
    assert ev["split"] == "val" and ev["metrics"]["math_activity/n"] == 12
    assert run_sd("-q", "-v", "plugins").returncode == 2


def test_preprocess_json(tmp_path):
    import sd_testeeg

    site = tmp_path / "site"
    make_fake_dist(site, "sd-testeeg", "sd_testeeg", (Path(__file__).parent / "sd_testeeg.py").read_text())
    sd_testeeg.write_testeeg(tmp_path / "raw", seed=1, n_subjects=3, seconds=21.0, runs=1)
    res = run_sd("preprocess", "--dataset", "testeeg", "--raw", str(tmp_path / "raw"), "--output",
                 str(tmp_path / "out"), "--fs", "125", "--nsamps", "500", "--resolution", "128", "--json",
                 extra_path=[site], env=FAST)
    assert res.returncode == 0, res.stderr
    (out,) = json.loads(res.stdout)
    assert out["dataset"] == "testeeg" and out["subjects"] == 3 and out["done"] == 3 and out["merged"]
    assert sum(out["images"].values()) == out["images_this_run"] > 0
    assert "preprocess testeeg subjects 3/3" in res.stderr


def test_shell_completion_lists_commands():
    res = run_sd(env={"_SD_COMPLETE": "bash_complete", "COMP_WORDS": "sd pre", "COMP_CWORD": "1"})
    assert res.returncode == 0 and "preprocess" in res.stdout, (res.stdout, res.stderr)


def _scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # the run's scalars (accelerate's TensorBoard tracker adds a sub-run for the hyperparameters)
    events = min((p.parent for p in folder.rglob("events.out.tfevents.*")), key=lambda p: len(p.parts))
    acc = EventAccumulator(str(events))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_tensorboard_tracking_of_classifier_and_diffusion_runs(work, tmp_path):
    cfg = experiment(work, work / "data", epochs=2, name="tb.toml",
                     training='eval_strategy = "epoch"\nlog_with = "tensorboard"')
    res = run_sd("-q", "train", str(cfg), "--out", str(work / "tb"), cwd=work, env=FAST)
    assert res.returncode == 0, res.stderr
    tags = _scalars(work / "tb" / "logs")
    history = json.loads((work / "tb" / "history.json").read_text())
    assert [s for s, _ in tags["train/loss"]] == list(range(1, 13))
    assert tags["train/loss"][-1][1] == pytest.approx(history["train"][-1]["loss"], rel=1e-5)
    assert [s for s, _ in tags["val/math_activity/balanced_accuracy"]] == [6, 12]
    assert "train/loss/math_activity" in tags

    from test_diffusion import write_cfg, write_processed

    data = write_processed(tmp_path / "parkinsons", per_class=4)
    dcfg = write_cfg(tmp_path / "d.toml", data, tmp_path / "drun", steps=3, log_with="tensorboard",
                     sample_solver_steps=2, samples_per_condition=1)
    res = run_sd("-q", "diffusion", "train", str(dcfg), cwd=tmp_path, env=FAST)
    assert res.returncode == 0, res.stderr
    assert [s for s, _ in _scalars(tmp_path / "drun" / "logs")["train/loss"]] == [1, 2, 3]
    # a tracker whose package is missing: one line before any training
    missing = experiment(work, work / "data", name="aim.toml", training='log_with = "aim"')
    res = run_sd("train", str(missing), "--out", str(work / "aim"), cwd=work)
    assert res.returncode == 1 and "log_with = 'aim' needs the aim package" in res.stderr
    assert not (work / "aim").exists()
