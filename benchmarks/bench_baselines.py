"""Benchmark: how hard are the demo data sets? Subject-held-out baselines over several seeds.

    python benchmarks/bench_baselines.py [--quick] [--json FILE] [--seeds 3] [--datasets math,...]
                                         [--size bench|full] [--scale F] [--workdir DIR]

For every seed (a seed re-draws the demo recordings, the subject split and the training), each
demo data set is written in its native format at the size below, preprocessed with the demo's
settings (a split by subject: no test subject is seen in training) and classified by

- **cnn_light**: the demo classifier (``sd train`` with the demo's experiment, its main task);
- **bandpower_logreg**: scikit-learn's logistic regression (balanced class weights) on the mean
  grey level of each channel strip in each EEG band of the image (the band-power features of
  ``sd evaluate``), standardised; one model per classification task.

Reported per data set: the main task's test balanced accuracy (mean and SD over seeds) of both,
chance, every classification task's (bandpower_logreg), a learning curve of cnn_light on 25 / 50
/ 100 % of the training subjects (math and parkinsons), and for chbmit the fraction of seizure
windows, the sensitivity (seizure windows found) and false alarms per hour (of bandpower_logreg
on the test subjects). Then the targets of sd's issue 25, each MET or NOT MET. They are ranges
that published subject-independent results span, not scores to reach.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: demo writer arguments per data set (default run and --quick)
SIZES = {"math": {"n_subjects": 24}, "parkinsons": {"n_subjects": 24}, "seed": {"n_subjects": 8}, "chbmit": {}}
QUICK = {"math": {"n_subjects": 12}, "parkinsons": {"n_subjects": 12}, "seed": {"n_subjects": 4}, "chbmit": {}}
#: published subject-independent ranges of the main task's balanced accuracy (issue 25)
TARGETS = {"math": (0.60, 0.90), "parkinsons": (0.55, 0.85), "seed": (0.25, 0.60), "chbmit": (0.60, 0.95)}
LEARNING = ("math", "parkinsons")
FRACTIONS = (0.25, 0.5, 1.0)
SEIZURE_WINDOWS = (0.002, 0.05)


def prepare(plugin, work: Path, seed: int, size: dict) -> Path:
    """Write the demo recordings with ``seed`` and preprocess them with the demo's settings."""
    from sd_core.cli.demo import DEMO_PREPROCESS
    from sd_core.preprocess import preprocess_dataset

    raw, out = work / "raw" / plugin.name, work / "processed" / plugin.name
    plugin.write_demo(raw, seed=seed, **size)
    options = {k: o.default for k, o in dict(plugin.options).items()}
    params = {**DEMO_PREPROCESS, "seed": seed}
    preprocess_dataset(plugin, raw, out, params, list(plugin.channels), options, workers=2)
    return out


def rows_of(out: Path, split: str) -> list[dict]:
    with open(out / f"{split}-metadata.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def band_features(out: Path, rows: list[dict]) -> np.ndarray:
    from PIL import Image

    from sd_core.evaluate.bandpower import band_features as features
    from sd_core.evaluate.bandpower import geometry

    params = json.loads((out / "preprocess.json").read_text())["parameters"]
    images = np.stack([np.asarray(Image.open(out / r["file_name"])) for r in rows])
    return features(images, geometry(params, images.shape[1]))


def classification_tasks(registry, dataset: str) -> dict[str, object]:
    from sd_core.specs import CLASSIFICATION

    return {t.name: t for t in registry.tasks_of(dataset) if t.kind == CLASSIFICATION}


def labels(task, rows: list[dict]) -> np.ndarray:
    """Class index per row (−1 where the row has no label for the task)."""
    classes = [str(c) for c in task.classes]
    out = []
    for r in rows:
        try:
            value = task.target_value(r)
        except KeyError:
            value = ""
        out.append(classes.index(value) if value in classes else -1)
    return np.array(out)


def bandpower_logreg(registry, dataset: str, out: Path) -> tuple[dict[str, float], dict]:
    """Test balanced accuracy per classification task, and the main task's test predictions."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = rows_of(out, "train"), rows_of(out, "test")
    x_train, x_test = band_features(out, train), band_features(out, test)
    scores, predictions = {}, {}
    for name, task in classification_tasks(registry, dataset).items():
        y_train, y_test = labels(task, train), labels(task, test)
        a, b = y_train >= 0, y_test >= 0
        if len(set(y_train[a])) < 2 or len(set(y_test[b])) < 2:
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
        model.fit(x_train[a], y_train[a])
        guess = model.predict(x_test[b])
        scores[name] = float(balanced_accuracy_score(y_test[b], guess))
        predictions[name] = (y_test[b], guess, [r for r, keep in zip(test, b) if keep])
    return scores, predictions


def subset_split(out: Path, fraction: float, seed: int) -> str:
    """A training split of ``fraction`` of the training subjects (at least one), as its own
    metadata file in the bench's processed folder; returns its name."""
    if fraction >= 1.0:
        return "train"
    rows = rows_of(out, "train")
    subjects = sorted({r["subject"] for r in rows})
    rng = np.random.default_rng(seed)
    keep = set(rng.permutation(subjects)[: max(1, round(fraction * len(subjects)))])
    name = f"train{int(round(fraction * 100))}"
    with open(out / f"{name}-metadata.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["subject"] in keep)
    return name


def cnn_light(registry, project, dataset: str, task: str, out: Path, run: Path, seed: int,
              train_split: str = "train") -> float:
    """Test balanced accuracy of the demo classifier (the demo's experiment, this seed)."""
    from sd_core.training.demo import experiment_text
    from sd_core.training.loop import train
    from sd_core.training.settings import load_train_experiment

    text = experiment_text(dataset, task, out, run, train_split=train_split, seed=seed)
    cfg = run.parent / f"{run.name}.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(text)
    res = train(load_train_experiment(cfg, registry), registry, project, run)
    return float(res.test.get(f"{task}/balanced_accuracy", float("nan")))


def detection(predictions, seizure_class: int, step_s: float) -> dict[str, float]:
    """Window-level sensitivity and false alarms per hour of non-seizure test recording."""
    y, guess, _ = predictions
    positive = y == seizure_class
    found = float((guess[positive] == seizure_class).mean()) if positive.any() else float("nan")
    hours = (~positive).sum() * step_s / 3600.0
    false = float((guess[~positive] == seizure_class).sum() / hours) if hours else float("nan")
    return {"sensitivity": found, "false_alarms_per_hour": false}


def one_seed(names, registry, project, work: Path, seed: int, sizes: dict) -> dict[str, dict]:
    """Every data set's figures for one seed."""
    from sd_core.cli.demo import DEMO_PREPROCESS

    out: dict[str, dict] = {}
    for name in names:
        plugin = registry.dataset(name)
        t0 = time.monotonic()
        processed = prepare(plugin, work / f"seed{seed}", seed, sizes[name])
        task = plugin.main_task
        all_tasks, predictions = bandpower_logreg(registry, name, processed)
        fig = {"task": task, "chance": 1.0 / len(registry.task(name, task).classes),
               "bandpower_logreg": all_tasks.get(task, float("nan")), "all_tasks": all_tasks, "curve": {}}
        for fraction in (FRACTIONS if name in LEARNING else (1.0,)):
            split = subset_split(processed, fraction, seed)
            run = work / f"seed{seed}" / "runs" / f"{name}-{split}"
            fig["curve"][str(fraction)] = cnn_light(registry, project, name, task, processed, run, seed, split)
        fig["cnn_light"] = fig["curve"]["1.0"]
        if name == "chbmit":
            every = rows_of(processed, "train") + rows_of(processed, "val") + rows_of(processed, "test")
            fig["positive_fraction"] = float(np.mean([r.get("seizure") == "1" for r in every]))
            step = DEMO_PREPROCESS["nsamps"] * (1 - DEMO_PREPROCESS["overlap"]) / DEMO_PREPROCESS["fs"]
            if task in predictions:
                seizure = list(map(str, registry.task(name, task).classes)).index("1")
                fig.update(detection(predictions[task], seizure, step))
        fig["seconds"] = time.monotonic() - t0
        out[name] = fig
        print(f"  seed {seed} {name}: cnn_light {fig['cnn_light']:.3f}, bandpower_logreg "
              f"{fig['bandpower_logreg']:.3f} ({fig['seconds']:.0f} s)", flush=True)
    return out


def summarise(per_seed: list[dict[str, dict]]) -> dict:
    def stat(values):
        v = np.array([x for x in values if not math.isnan(x)])
        return {"mean": float(v.mean()) if len(v) else float("nan"), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}

    result = {}
    for name in per_seed[0]:
        figs = [s[name] for s in per_seed]
        tasks = sorted({t for f in figs for t in f["all_tasks"]})
        entry = {"task": figs[0]["task"], "chance": figs[0]["chance"],
                 "models": {m: stat([f[m] for f in figs]) for m in ("cnn_light", "bandpower_logreg")},
                 "all_tasks": {t: stat([f["all_tasks"].get(t, float("nan")) for f in figs])["mean"] for t in tasks},
                 "learning_curve": {k: stat([f["curve"][k] for f in figs])["mean"] for k in figs[0]["curve"]}}
        for key in ("positive_fraction", "sensitivity", "false_alarms_per_hour"):
            if key in figs[0]:
                entry[key] = stat([f.get(key, float("nan")) for f in figs])["mean"]
        result[name] = entry
    return {"datasets": result}


def targets(summary: dict) -> list[tuple[str, bool]]:
    checks = []
    for name, d in summary["datasets"].items():
        best = max([*d["all_tasks"].values(), *(m["mean"] for m in d["models"].values())], default=0.0)
        checks.append((f"{name}: no task at >= 0.99 (highest {best:.3f})", best < 0.99))
        lo, hi = TARGETS.get(name, (0.0, 1.0))
        for model, m in d["models"].items():
            checks.append((f"{name}: {model} {m['mean']:.3f} within {lo:.2f}-{hi:.2f}", lo <= m["mean"] <= hi))
        curve = d["learning_curve"]
        if name in LEARNING and "0.25" in curve:
            checks.append((f"{name}: learning curve rises 25 % -> 100 % ({curve['0.25']:.3f} -> {curve['1.0']:.3f})",
                           curve["1.0"] > curve["0.25"]))
        if "positive_fraction" in d:
            lo_f, hi_f = SEIZURE_WINDOWS
            f = d["positive_fraction"]
            checks.append((f"{name}: seizure windows {100 * f:.2f} % within 0.2-5 %", lo_f <= f <= hi_f))
    return checks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller data sets, for a first look")
    ap.add_argument("--size", choices=("bench", "full"), default="bench",
                    help="bench: the sizes above; full: the real data sets' (sd demo --size full), times --scale")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--datasets", default="math,parkinsons,seed,chbmit")
    ap.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    ap.add_argument("--workdir", type=Path, default=None, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args(argv)

    import torch

    from sd_core.config import load_config
    from sd_core.plugins import get_registry

    torch.set_num_threads(1)
    registry, project = get_registry(), load_config(None)
    names = [n for n in args.datasets.split(",") if n]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sd-bench-baselines-"))
    sizes = QUICK if args.quick else SIZES
    if args.size == "full":
        sizes = {n: registry.dataset(n).demo_size("full", args.scale)[0] for n in names}
    t0 = time.monotonic()
    try:
        per_seed = [one_seed(names, registry, project, work, s, sizes) for s in range(args.seeds)]
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarise(per_seed)
    summary["seeds"], summary["quick"], summary["size"], summary["seconds"] = args.seeds, args.quick, args.size, time.monotonic() - t0
    print_report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    checks = targets(summary)
    for text, ok in checks:
        print(f"  {'MET    ' if ok else 'NOT MET'}  {text}")
    print(f"{sum(ok for _, ok in checks)} of {len(checks)} targets met in {summary['seconds'] / 60:.1f} min")
    return 0


def print_report(summary: dict) -> None:
    print(f"\nsubject-held-out test balanced accuracy, {summary['seeds']} seeds (mean ± SD)")
    print(f"{'data set':<11} {'task':<16} {'chance':>6} {'cnn_light':>15} {'bandpower_logreg':>17}  learning curve")
    for name, d in summary["datasets"].items():
        m = d["models"]
        curve = " ".join(f"{k}:{v:.3f}" for k, v in d["learning_curve"].items())
        print(f"{name:<11} {d['task']:<16} {d['chance']:>6.3f} {m['cnn_light']['mean']:>8.3f} ± {m['cnn_light']['sd']:.3f}"
              f" {m['bandpower_logreg']['mean']:>9.3f} ± {m['bandpower_logreg']['sd']:.3f}  {curve}")
        print("            all tasks (bandpower_logreg): "
              + ", ".join(f"{t} {v:.3f}" for t, v in d["all_tasks"].items()))
        if "positive_fraction" in d:
            print(f"            seizure windows {100 * d['positive_fraction']:.2f} %, sensitivity "
                  f"{d.get('sensitivity', float('nan')):.3f}, false alarms {d.get('false_alarms_per_hour', float('nan')):.1f}/h")


if __name__ == "__main__":
    raise SystemExit(main())
