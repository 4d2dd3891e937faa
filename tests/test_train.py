"""Multi-task classifier training: models, data, sampling, `sd train`, resume, 2 processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from layout_data import math_like, parkinsons_like
from conftest import run_sd
from sd_core.config import load_config
from sd_core.data.images import ProcessedImages
from sd_core.data.sampling import balanced_weights, epoch_batches, epoch_order, expected_shares
from sd_core.data.select import read_rows, sources_for
from sd_core.data.sources import Source
from sd_core.data.tasks import MISSING_CLASS, resolve_tasks, standardised
from sd_core.plugins import get_registry
from sd_core.specs import CLASSIFICATION, REGRESSION
from sd_core.training.loop import train
from sd_core.training.model import build_model
from sd_core.training.settings import load_train_experiment

SMALL = {"cnn_light": {"channels": [4, 8, 8], "hidden": [32], "pool_size": 4},
         "transformer": {"d_model": 16, "layers": 1, "heads": 2, "ff_dim": 32},
         "eegnet": {"f1": 4, "depth": 1, "f2": 8, "kernel": 7},
         "resnet18": {"width": 8, "stem": "small"}}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("processed")
    math_like(root / "math")
    parkinsons_like(root / "parkinsons")
    return root


def experiment(tmp: Path, data: Path, *, datasets=("math",), tasks=("doing_math_task",),
               model: str = "", training: str = "", extra_data: str = "", epochs: int = 4,
               name="exp.toml") -> Path:
    tasks_ = [("math_activity" if t == "doing_math_task" else t) for t in tasks]
    paths = ", ".join(f'{d} = "{data / d}"' for d in datasets)
    text = f"""
[data]
datasets = {json.dumps(list(datasets))}
tasks = {json.dumps(tasks_)}
paths = {{ {paths} }}
batch_size = 8
{extra_data}
[model]
backbone = "cnn_light"
embedding_dim = 16
dropout = 0.1
{model or 'options = { channels = [4, 8, 8], hidden = [32], pool_size = 4 }'}
[training]
epochs = {epochs}
lr = 3e-3
seed = 3
{training}
"""
    path = tmp / name
    path.write_text(text)
    return path


# -- model ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", sorted(SMALL))
@pytest.mark.parametrize("mix", ["classification", "regression", "mixed"])
def test_every_backbone_with_every_mix_of_tasks(backbone, mix, data):
    reg = get_registry()
    rows = read_rows([Source(data / "parkinsons", "parkinsons")], "train")
    names = {"classification": ["health", "gender"], "regression": ["age"], "mixed": ["health", "age", "gender"]}[mix]
    tasks = [standardised(t, rows) for t in resolve_tasks(names, ["parkinsons"], reg, rows)]
    torch.manual_seed(0)
    model = build_model(reg, backbone, SMALL[backbone], tasks, 12, 0.2, 32)
    ds = ProcessedImages(rows, tasks, 32)
    batch = ds.__getitems__([0, 1, 2, 9, 20])
    model.eval()
    out = model(batch["image"])
    assert set(out) == set(names)
    for t in tasks:
        expect = (5, len(t.classes)) if t.kind == CLASSIFICATION else (5,)
        assert tuple(out[t.name].shape) == expect
        assert torch.isfinite(out[t.name]).all()
    loss = sum(o.float().pow(2).mean() for o in out.values())
    loss.backward()
    assert all(p.grad is not None for p in model.heads.parameters())


# -- data ----------------------------------------------------------------------------------

def test_dataset_returns_image_targets_and_row(data):
    reg = get_registry()
    rows = read_rows([Source(data / "math", "math")], "train")
    tasks = [standardised(t, rows) for t in resolve_tasks(["math_activity", "gender", "age"], ["math"], reg, rows)]
    ds = ProcessedImages(rows, tasks)
    item = ds[3]
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    assert -1.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0
    row = item["row"]
    assert row["file_name"] == rows[3]["file_name"] and "_root" not in row
    assert int(item["targets"]["math_activity"]) == int(row["doing_math"])
    assert int(item["targets"]["gender"]) == ("F", "M").index(row["gender"])
    age = tasks[2]
    assert float(item["targets"]["age"]) * age.std + age.mean == pytest.approx(float(row["age"]), abs=1e-4)
    ages = [float(r["age"]) for r in rows]
    assert age.mean == pytest.approx(sum(ages) / len(ages))
    # the cached path and the decoding path give the same pixels
    uncached = ProcessedImages(rows, tasks, cache_mb=0)
    assert uncached.cache is None and ds.cache is not None
    assert torch.equal(uncached.__getitems__([0, 5])["image"], ds.__getitems__([0, 5])["image"])
    resized = ProcessedImages(rows, tasks, image_size=16)
    assert resized.__getitems__([0])["image"].shape == (1, 1, 16, 16)


def test_across_data_sets_only_shared_or_canonical_tasks(data):
    reg = get_registry()
    rows = read_rows(sources_for(["math", "parkinsons"], {d: data / d for d in ("math", "parkinsons")},
                                 load_config(), reg), "train")
    tasks = resolve_tasks(["health", "gender", "age"], ["math", "parkinsons"], reg, rows)
    assert [t.kind for t in tasks] == [CLASSIFICATION, CLASSIFICATION, REGRESSION]
    assert tasks[0].classes == ("H", "PD") and tasks[1].classes == ("F", "M")
    with pytest.raises(Exception, match="not defined by data set.*parkinsons.*allowed: age, dataset, gender, health"):
        resolve_tasks(["math_activity"], ["math", "parkinsons"], reg, rows)
    # an empty label is a missing target, not a class
    row = dict(rows[0], health="")
    assert tasks[0].target(row) == MISSING_CLASS
    assert math.isnan(tasks[2].target(dict(rows[0], age="")))


def test_balanced_sampler_draw_proportions():
    # three groups of 800, 150 and 50 rows
    groups = [("a", 0)] * 800 + [("a", 1)] * 150 + [("b", 0)] * 50
    # uncapped: inverse frequency gives every group a third of the draws
    shares = expected_shares(groups, max_weight=1000)
    assert all(s == pytest.approx(1 / 3) for s in shares.values())
    # capped at 4: the 150-row group weighs 4 per row instead of 5.33, the 50-row one 4, not 16
    capped = expected_shares(groups, max_weight=4)
    mass = {("a", 0): 800 * 1, ("a", 1): 150 * 4, ("b", 0): 50 * 4}
    total = sum(mass.values())
    for g in mass:
        assert capped[g] == pytest.approx(mass[g] / total)
    assert capped == pytest.approx({("a", 0): 0.5, ("a", 1): 0.375, ("b", 0): 0.125})
    # the sampler's draws follow the expected shares
    weights = balanced_weights(groups, 4)
    drawn = Counter()
    for epoch in range(20):
        drawn.update(groups[i] for i in epoch_order(len(groups), epoch, seed=0, weights=weights))
    n = sum(drawn.values())
    for g, share in capped.items():
        assert drawn[g] / n == pytest.approx(share, abs=0.015)
    # the order depends only on (seed, epoch)
    assert epoch_order(1000, 3, 0, weights) == epoch_order(1000, 3, 0, weights)
    assert epoch_order(1000, 3, 0, weights) != epoch_order(1000, 4, 0, weights)


def test_epoch_batches_split_between_processes():
    order = list(range(50))
    one = epoch_batches(order, 8, 1, 0)
    a, b = epoch_batches(order, 4, 2, 0), epoch_batches(order, 4, 2, 1)
    assert len(one) == 7 and len(a) == len(b) == 6
    assert sorted(i for x in a + b for i in x) == list(range(48))


# -- sd train ------------------------------------------------------------------------------

def test_train_run_folder_and_falling_loss(tmp_path, data):
    cfg = experiment(tmp_path, data, tasks=("doing_math_task", "gender", "age"),
                     training='eval_strategy = "epoch"\nbest_k = 2')
    res = run_sd("train", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    run = tmp_path / "run"
    for name in ("config.toml", "run.json", "history.json", "metrics.json", "curves.png", "state.json"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    losses = [h["loss"] for h in history["train"]]
    assert len(losses) == 4 * 6  # 48 training rows, batch 8, 4 epochs
    assert sum(losses[-6:]) < sum(losses[:6])
    # the band's row gives math_activity away; gender and age are not in these images
    task_loss = [h["loss/math_activity"] for h in history["train"]]
    assert sum(task_loss[-6:]) < 0.5 * sum(task_loss[:6])
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["test"]["math_activity/n"] == 12
    assert summary["test"]["math_activity/balanced_accuracy"] >= 0.9
    assert {"age/mae", "age/r2", "gender/auroc", "math_activity/macro_f1"} <= set(summary["test"])
    state = json.loads((run / "state.json").read_text())
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(state["best"]) == 2 and set(kept) == {state["latest"], *(n for _, n in state["best"])}
    assert summary["best_checkpoint"] == state["best"][0][1]
    weights = load_file(str(run / "checkpoints" / state["latest"] / "model.safetensors"))
    assert any(k.startswith("heads.age") for k in weights)
    assert "math_activity" in res.stdout and "balanced_accuracy" in res.stdout
    # the saved run evaluates again, on any split, to the same figures
    again = run_sd("evaluate-run", str(run), "--split", "test", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    ev = json.loads((run / "eval-test.json").read_text())
    assert ev["metrics"]["math_activity/balanced_accuracy"] == pytest.approx(
        summary["test"]["math_activity/balanced_accuracy"])
    preds = (run / "predictions-test.csv").read_text().splitlines()
    assert len(preds) == 13 and preds[0].startswith("file_name,dataset,subject,math_activity")
    # a second start into the same folder is refused rather than overwriting it
    res = run_sd("train", str(cfg), "--out", str(run), cwd=tmp_path)
    assert res.returncode == 1 and "--resume" in res.stderr


def test_resume_after_interruption_gives_the_same_weights(tmp_path, data):
    reg = get_registry()
    cfg = experiment(tmp_path, data, training='eval_strategy = "steps"\neval_steps = 5\nsave_steps = 5')
    exp = load_train_experiment(cfg, reg)
    full = train(exp, reg, load_config(), tmp_path / "full")

    def crash(step, loss):
        if step == 17:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError):
        train(exp, reg, load_config(), tmp_path / "cut", on_step=crash)
    state = json.loads((tmp_path / "cut" / "state.json").read_text())
    assert state["latest"] == "step-000015" and not state["finished"]  # mid-epoch (6 steps each)
    resumed = train(exp, reg, load_config(), tmp_path / "cut", resume=True)
    assert resumed.steps == full.steps == 24
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step-000024" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "checkpoints" / "step-000024" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())
    h_cut = json.loads((tmp_path / "cut" / "history.json").read_text())
    assert [h["loss"] for h in h_full["train"]] == [h["loss"] for h in h_cut["train"]]
    assert full.test == resumed.test


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["epoch", "steps", "none"])
def test_two_process_cpu_run(tmp_path, data, strategy):
    cfg = experiment(tmp_path, data, datasets=("math", "parkinsons"), tasks=("health", "gender"),
                     epochs=6, training=f'eval_strategy = "{strategy}"\neval_steps = 7')
    env = {k: v for k, v in os.environ.items() if k not in ("SD_CONFIG",)}
    env.update(OMP_NUM_THREADS="1", COLUMNS="200")
    # the command the docs give: accelerate's launcher (torchrun sets up the same processes)
    res = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                          "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                          "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                          "-m", "sd_core", "train", str(cfg), "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["world_size"] == 2
    # 48 + 32 training rows, batch 8 per process: 10 batches, 5 steps per process and epoch
    assert info["steps_per_epoch"] == 5
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # outputs gathered from both processes cover every row exactly once
    assert summary["val"]["health/n"] == 12 + 16 and summary["test"]["gender/n"] == 12 + 16
    losses = [h["loss"] for h in json.loads((tmp_path / "run" / "history.json").read_text())["train"]]
    assert len(losses) == 30 and sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert res.stdout.count("sd train: best checkpoint") == 1  # the table comes from one process


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("case, expect", [
    ("unknown_task", "unknown task 'mood' of data set 'math'; allowed: age, count_quality, gender"),
    ("unknown_backbone", "backbone = 'vgg' is not installed; allowed: cnn_light, eegnet, resnet18, transformer"),
    ("bad_option", "[model.options] unknown key 'depth'; allowed: activation, channels"),
    ("single_class", "task 'health' has a single class in the train split (H)"),
    ("missing_data", "run `sd preprocess --dataset parkinsons`"),
    ("cross_dataset", "not defined by data set(s) parkinsons"),
    ("bad_key", "[training] unknown key 'epoch'; allowed:"),
    ("bad_choice", "[training] optimizer = 'lamb' is not allowed; allowed: adamw, adam, sgd"),
    ("bad_metric", "[training] metric = 'math_activity/mae': unknown metric for a classification task"),
    ("unknown_dataset", "unknown data set 'eegmmi'; installed:"),
])
def test_user_errors_are_one_line(case, expect, tmp_path, data):
    kw = {
        "unknown_task": dict(tasks=("mood",)),
        "unknown_backbone": dict(),
        "bad_option": dict(model="options = { depth = 3 }"),
        "single_class": dict(tasks=("health",)),
        "missing_data": dict(datasets=("parkinsons",), tasks=("health",)),
        "cross_dataset": dict(datasets=("math", "parkinsons"), tasks=("doing_math_task",)),
        "bad_key": dict(training="epoch = 3"),
        "bad_choice": dict(training='optimizer = "lamb"'),
        "bad_metric": dict(training='metric = "math_activity/mae"'),
        "unknown_dataset": dict(datasets=("eegmmi",)),
    }[case]
    data_dir = tmp_path / "empty" if case == "missing_data" else data
    cfg = experiment(tmp_path, data_dir, **kw)
    if case == "unknown_backbone":
        cfg.write_text(cfg.read_text().replace('backbone = "cnn_light"', 'backbone = "vgg"'))
    res = run_sd("train", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    err = " ".join(res.stderr.split())
    assert err.startswith("error:") and "Traceback" not in res.stderr, res.stderr
    assert expect in err, err
    assert len(res.stderr.strip().splitlines()) <= 2 or len(err) > 160


def test_evaluate_run_on_another_folder(tmp_path, data):
    """A run evaluates on any folder in the processed layout (e.g. generated data)."""
    cfg = experiment(tmp_path, data, epochs=2)
    assert run_sd("train", str(cfg), "--out", str(tmp_path / "run"), cwd=tmp_path).returncode == 0
    other = tmp_path / "other"
    math_like(other, seed=7)
    res = run_sd("evaluate-run", str(tmp_path / "run"), "--split", "val", "--data", str(other), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ev = json.loads((tmp_path / "run" / "eval-val-other.json").read_text())
    assert ev["metrics"]["math_activity/n"] == 12 and ev["sources"] == [str(other)]
    res = run_sd("evaluate-run", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert res.returncode == 1 and "does not exist" in res.stderr


def test_loader_workers_and_uncached_images_give_the_same_run(tmp_path, data):
    reg = get_registry()
    base = experiment(tmp_path, data, epochs=1, training='eval_strategy = "none"', name="a.toml")
    other = experiment(tmp_path, data, epochs=1, training='eval_strategy = "none"',
                       extra_data="workers = 1\ncache_mb = 0", name="b.toml")
    a = train(load_train_experiment(base, reg), reg, load_config(), tmp_path / "a")
    b = train(load_train_experiment(other, reg), reg, load_config(), tmp_path / "b")
    assert [h["loss"] for h in a.history["train"]] == [h["loss"] for h in b.history["train"]]
    assert len(a.history["train"]) == 6


def test_init_writes_a_starter_experiment_that_loads(tmp_path):
    res = run_sd("init", "--experiment", "train", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    exp = load_train_experiment(tmp_path / "train.toml", get_registry())
    text = (tmp_path / "train.toml").read_text()
    assert "# max_sampling_weight = 10.0" in text and "# early_stopping = 0" in text
    assert exp["training"]["epochs"] == 10 and exp["model"]["backbone"] == "cnn_light"
    assert exp["data"]["tasks"] == [get_registry().dataset(exp["data"]["datasets"][0]).main_task]


def test_init_writes_a_starter_diffusion_experiment_that_loads(tmp_path):
    from sd_core.diffusion.config import load_diffusion_experiment

    res = run_sd("init", "--experiment", "diffusion", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    exp = load_diffusion_experiment(tmp_path / "diffusion.toml")
    assert exp["data"]["conditions"] == [get_registry().dataset(exp["data"]["datasets"][0]).main_task]
    assert "# prediction_type = " in (tmp_path / "diffusion.toml").read_text()
