"""``sd evaluate REAL GEN``: every part of the evaluation, in order, into one result.

Sets (all images at the evaluation size S, the generated set's own size):

- ``real``: REAL's ``real_split`` (default ``test``): the reference every metric compares with;
- ``real_train``: REAL's ``train`` split: the real-vs-real floor (a subset of the generated
  set's size, per class likewise, so that both comparisons have the same sample sizes), the
  classifier's training data, and the memorisation reference;
- ``generated``: every row of GEN.

Every set is capped at ``max_images`` rows (a seeded draw). Before any metric, features are
centred on the real reference and divided by one scale, the RMS standard deviation of its
dimensions (a fixed similarity transform: distances keep their geometry). The result is written by
:func:`write_outputs` (``evaluation.json``, ``report.html``); keys are documented in
``docs/evaluate.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sd_core.errors import SdError
from sd_core.evaluate import stages
from sd_core.evaluate.inputs import FLOOR_SPLIT, distinct_sets, gen_labels

FORMAT = 1


@dataclass
class Options:
    real_split: str = "test"
    tasks: Sequence[str] = ()
    classifier: Path | None = None
    seed: int = 0
    max_images: int = 2000
    image_size: int = 0
    skip_utility: bool = False
    utility_seeds: int = 3
    steps: int = 150  # optimizer steps of the classifier trained here and of each utility run
    features: Sequence[str] = ()  # feature spaces (default: every registered one)
    recipe: dict = field(default_factory=dict)  # TrainingRecipe fields to change (backbone, options, …)


def _read_params(folder: Path) -> dict | None:
    path = folder / "preprocess.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("parameters")
    except (OSError, ValueError):
        return None


def _generation(gen: Path) -> dict:
    path = gen / "generation.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def default_tasks(gen: Path, dataset: str, registry: Any) -> list[str]:
    """The tasks GEN was conditioned on (its run's labels.json), else the data set's main task."""
    info = _generation(gen)
    run = Path(info["run"]) if info.get("run") else None
    if run is not None and (run / "labels.json").is_file():
        from sd_core.data.labels import LabelSpec

        try:
            names = [t.name for t in LabelSpec.load(run / "labels.json").categorical]
            if names:
                return names
        except SdError:
            pass
    main = getattr(registry.dataset(dataset), "main_task", "")
    if not main:
        raise SdError(f"cannot tell which labels {gen} was generated for; name them with --task")
    return [main]


def _pick(indices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(indices) <= n:
        return np.asarray(indices)
    return np.sort(rng.choice(indices, n, replace=False))


def _load(rows: list[dict], size: int):
    from sd_core.data.images import ProcessedImages

    data = ProcessedImages(rows, [], size, cache_mb=1e9)
    return data.images_uint8(list(range(len(rows))))


@dataclass
class _Evaluation:
    """One evaluation's inputs, and the three sets as read, checked and capped."""

    real: Path
    gen: Path
    out: Path
    opts: Options
    registry: Any
    project: Any
    real_rows: list[dict]
    train_rows: list[dict]
    gen_rows: list[dict]
    dataset: str
    tasks: list
    size: int
    params: dict | None
    gen_split: str
    rng: np.random.Generator


def evaluate(real: Path, gen: Path, out: Path, opts: Options, registry: Any = None, project: Any = None,
             console: Any = None) -> dict[str, Any]:
    from sd_core.evaluate.progress import Steps

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    ev = _read_sets(Path(real).resolve(), Path(gen).resolve(), Path(out).resolve(), opts, registry, project)
    steps = Steps(console)
    result = _header(ev)
    with steps:
        imgs = _read_images(ev, steps)
        recipe = _recipe(ev.size, opts)
        ctx, clf_holder = _classifier(ev, recipe, steps)
        groups = {t.name: _class_indices(t, ev.real_rows, ev.train_rows, ev.gen_rows) for t in ev.tasks}
        result["features"], raw = _fidelity(registry, ctx, opts, imgs, groups, steps, ev.rng)
        _headline(result)
        steps.begin("conditional accuracy", 1)
        result["conditional_accuracy"] = stages.conditional_accuracy(ctx, ev.tasks, imgs["generated"], ev.gen_rows,
                                                                     raw.get("classifier"))
        result["classifier"] = stages.classifier_summary(ctx, clf_holder, recipe)
        steps.advance()
        steps.begin("band power", 1)
        result["band_power"], figures = stages.band_power(ev.params, ev.size, imgs, ev.tasks, ev.real_rows,
                                                          ev.gen_rows, opts.seed)
        steps.advance()
        steps.begin("memorisation", 1)
        result["memorisation"], figures["memorisation"] = stages.memorisation_result(imgs, ev.gen_rows, ev.train_rows)
        steps.advance()
        result.update(_utility(ev, recipe, imgs, steps))
        steps.end()
    figures["grid"] = stages.grid_sets(ev.tasks, ev.real_rows, ev.gen_rows, imgs)
    return {"result": result, "figures": figures, "seconds": dict(steps.times)}


def _read_rows(real: Path, gen: Path, opts: Options, registry: Any) -> tuple[list, list, list, str]:
    """The rows of REAL's two splits and of GEN, checked: rows in each, one data set, known feature spaces."""
    from sd_core.data.sources import Source, read_metadata

    real_rows = read_metadata(Source(real), opts.real_split)
    train_rows = read_metadata(Source(real), FLOOR_SPLIT)
    gen_rows = read_metadata(Source(gen))
    for what, rows, split in (("REAL", real_rows, opts.real_split), ("REAL", train_rows, FLOOR_SPLIT),
                              ("GEN", gen_rows, "any")):
        if not rows:
            raise SdError(f"{what}: split {split!r} has no rows")
    distinct_sets(real, gen, opts.real_split, real_rows, train_rows, gen_rows)
    datasets = sorted({r.get("dataset", "") for r in real_rows + train_rows})
    if len(datasets) != 1 or not datasets[0]:
        raise SdError(f"{real}: evaluate one data set at a time (found {', '.join(datasets) or 'none'})")
    dataset = datasets[0]
    other = sorted({r.get("dataset", "") for r in gen_rows} - {dataset})
    if other:
        raise SdError(f"{gen}: holds rows of {', '.join(other)}, not of {dataset} like {real}")
    unknown = [n for n in opts.features if n not in registry.feature_extractors]
    if unknown:
        raise SdError(f"--features: unknown feature space(s) {', '.join(unknown)}; allowed: "
                      + ", ".join(registry.feature_extractors))
    return real_rows, train_rows, gen_rows, dataset


def _read_sets(real: Path, gen: Path, out: Path, opts: Options, registry: Any, project: Any) -> _Evaluation:
    """The three sets capped at max_images (a seeded draw), their classification tasks, the
    evaluation size and the preprocessing parameters."""
    from sd_core.data.tasks import resolve_tasks
    from sd_core.plugins.specs import CLASSIFICATION

    real_rows, train_rows, gen_rows, dataset = _read_rows(real, gen, opts, registry)
    rng = np.random.default_rng(opts.seed)
    real_rows = [real_rows[i] for i in _pick(np.arange(len(real_rows)), opts.max_images, rng)]
    train_rows = [train_rows[i] for i in _pick(np.arange(len(train_rows)), opts.max_images, rng)]
    gen_rows = [gen_rows[i] for i in _pick(np.arange(len(gen_rows)), opts.max_images, rng)]
    names = list(opts.tasks) or default_tasks(gen, dataset, registry)
    tasks = resolve_tasks(names, [dataset], registry, real_rows + train_rows + gen_rows, where="--task")
    tasks = [t for t in tasks if t.kind == CLASSIFICATION]
    if not tasks:
        raise SdError(f"--task: {', '.join(names)} has no classification task to compare classes by")
    gen_labels(gen, tasks, dataset, gen_rows)
    from sd_core.data.images import load_image

    size = opts.image_size or load_image(gen_rows[0], None).shape[0]
    params = _read_params(gen) or _read_params(real)
    gen_split = _generation(gen).get("split") or gen_rows[0].get("split") or "train"
    return _Evaluation(real, gen, out, opts, registry, project, real_rows, train_rows, gen_rows, dataset, tasks,
                       size, params, gen_split, rng)


def _header(ev: _Evaluation) -> dict[str, Any]:
    """The result's first keys: what was compared with what, at which size, on how many images."""
    opts, params = ev.opts, ev.params
    return {
        "format": FORMAT, "real": str(ev.real), "generated": str(ev.gen), "dataset": ev.dataset,
        "real_split": opts.real_split, "floor_split": FLOOR_SPLIT, "tasks": [t.name for t in ev.tasks],
        "image_size": ev.size, "seed": opts.seed, "max_images": opts.max_images,
        "n": {"real": len(ev.real_rows), "real_train": len(ev.train_rows), "generated": len(ev.gen_rows)},
        "preprocess": {k: params.get(k) for k in ("fs", "nsamps", "resolution", "bins", "channels")} if params else None,
    }


def _read_images(ev: _Evaluation, steps) -> dict[str, Any]:
    """The images of the three sets, at the evaluation size."""
    steps.begin("reading images", 3)
    imgs = {}
    for key, rows in (("real", ev.real_rows), ("real_train", ev.train_rows), ("generated", ev.gen_rows)):
        imgs[key] = _load(rows, ev.size)
        steps.advance()
    return imgs


def _recipe(size: int, opts: Options):
    from sd_core.evaluate.runs import TrainingRecipe

    return TrainingRecipe(image_size=size, steps=opts.steps, **opts.recipe)


def _classifier(ev: _Evaluation, recipe, steps) -> tuple[Any, dict[str, Any]]:
    """The feature context, with its real-trained classifier loaded (--classifier) or trained here;
    and a holder that says which."""
    opts = ev.opts
    clf_holder: dict[str, Any] = {}

    def make_classifier():
        from sd_core.evaluate.runs import ensure_run, experiment_text, load_classifier

        if opts.classifier:
            clf_holder["trained_here"] = False
            return load_classifier(Path(opts.classifier), ev.registry)
        run = ev.out / "classifier"
        text = experiment_text(ev.dataset, [t.name for t in ev.tasks], ev.real, FLOOR_SPLIT, recipe, opts.seed, run)
        clf_holder["trained_here"] = True
        return load_classifier(ensure_run(text, run, ev.registry, ev.project), ev.registry)

    from sd_core.evaluate.features import FeatureContext

    ctx = FeatureContext(ev.size, ev.params, opts.seed, make_classifier)
    steps.begin("classifier: loading" if opts.classifier else "classifier: training on real data", 1)
    ctx.classifier()
    steps.advance()
    return ctx, clf_holder


def _class_indices(task, real_rows, train_rows, gen_rows) -> dict[str, tuple[np.ndarray, ...]]:
    from sd_core.evaluate.bandpower import class_masks

    r, t, g = class_masks(real_rows, task), class_masks(train_rows, task), class_masks(gen_rows, task)
    return {c: (np.flatnonzero(r[c]), np.flatnonzero(t[c]), np.flatnonzero(g[c])) for c in task.classes}


def _fidelity(registry, ctx, opts: Options, imgs, groups, steps, rng) -> dict[str, Any]:
    from sd_core.evaluate.features import extract
    from sd_core.evaluate.fidelity import compute_all

    metrics = list(registry.set_metrics.values())
    wanted = list(opts.features) or list(registry.feature_extractors)
    n_gen = len(imgs["generated"])
    floor_all = _pick(np.arange(len(imgs["real_train"])), n_gen, rng)
    floor_cls = {task: {c: _pick(ix[1], len(ix[2]), rng) for c, ix in classes.items()}
                 for task, classes in groups.items()}
    out: dict[str, Any] = {}
    raw: dict[str, np.ndarray] = {}  # each space's generated features as extracted
    for name in wanted:
        spec = registry.feature_extractors[name]
        steps.begin(f"features and metrics: {name}", 4)
        try:
            fn = spec.build(ctx)
        except SdError as exc:
            out[name] = {"skipped": str(exc), "description": spec.description}
            steps.advance(4)
            continue
        feats = {}
        for key in ("real", "real_train", "generated"):
            feats[key] = extract(fn, imgs[key])
            steps.advance()
        # centred on the real reference and divided by one scale (the RMS spread of its
        # dimensions): every space's numbers come out of comparable size, its geometry is kept,
        # and a nearly constant dimension is not blown up
        raw[name] = feats["generated"]
        mu = feats["real"].mean(0)
        scale = float(np.sqrt(feats["real"].var(0).mean())) if len(feats["real"]) > 1 else 1.0
        scale = scale if scale > 1e-12 else 1.0
        feats = {k: (v - mu) / scale for k, v in feats.items()}
        entry: dict[str, Any] = {"description": spec.description, "dim": int(feats["real"].shape[1]),
                                 "owner": registry.owner("sd_feature_extractors", name)}
        entry["pooled"] = {
            "generated": compute_all(metrics, feats["real"], feats["generated"], opts.seed),
            "real_vs_real": compute_all(metrics, feats["real"], feats["real_train"][floor_all], opts.seed),
            "n_real": len(feats["real"]), "n_generated": n_gen, "n_real_train": len(floor_all),
        }
        per: dict[str, Any] = {}
        for task, classes in groups.items():
            per[task] = {}
            for c, (ri, _ti, gi) in classes.items():
                fi = floor_cls[task][c]
                per[task][c] = {
                    "generated": compute_all(metrics, feats["real"][ri], feats["generated"][gi], opts.seed),
                    "real_vs_real": compute_all(metrics, feats["real"][ri], feats["real_train"][fi], opts.seed),
                    "n_real": len(ri), "n_generated": len(gi), "n_real_train": len(fi),
                }
        entry["per_class"] = per
        out[name] = entry
        steps.advance()
    return out, raw


HEADLINE = ("fid", "kid", "precision", "recall", "density", "coverage")


def _headline(result: dict[str, Any]) -> None:
    """Top-level ``fid``, ``kid``, … per feature space: the pooled value and its floor."""
    for key in HEADLINE:
        result[key] = {}
        for space, entry in result["features"].items():
            if "pooled" not in entry:
                continue
            g, f = entry["pooled"]["generated"], entry["pooled"]["real_vs_real"]
            if key not in g:
                continue
            item = {"value": g[key], "real_vs_real": f[key]}
            if key == "kid":
                item.update(se=g.get("kid_se"), real_vs_real_se=f.get("kid_se"))
            result[key][space] = item


UTILITY = ("tstr", "trts", "augmentation", "trtr")


def _utility(ev: _Evaluation, recipe, imgs, steps) -> dict[str, Any]:
    """TSTR, TRTS, augmentation and TRTR: each with the runs' shared keys and its balanced accuracy."""
    opts = ev.opts
    if opts.skip_utility:
        return {key: {"skipped": "--skip-utility"} for key in UTILITY}
    from sd_core.evaluate.utility import utility

    seeds = [opts.seed + i for i in range(opts.utility_seeds)]
    steps.begin("utility (TSTR, TRTS, augmentation)", 3 * len(seeds))
    u = utility(ev.dataset, [t.name for t in ev.tasks], ev.real, ev.gen, ev.gen_split, recipe, seeds,
                ev.out / "utility", ev.registry, ev.project, imgs["real"], ev.real_rows, imgs["generated"],
                ev.gen_rows, steps.advance)
    out = {}
    for key in UTILITY:
        out[key] = {k: v for k, v in u.items() if k not in UTILITY}
        out[key]["balanced_accuracy"] = u[key]
    return out


def clean(value: Any) -> Any:
    """NaN and infinities → None (strict JSON), numpy scalars → Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
