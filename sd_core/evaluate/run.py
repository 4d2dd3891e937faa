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

FORMAT = 1
FLOOR_SPLIT = "train"


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


def evaluate(real: Path, gen: Path, out: Path, opts: Options, registry: Any = None, project: Any = None,
             console: Any = None) -> dict[str, Any]:
    from sd_core.data.sources import Source, read_metadata
    from sd_core.data.tasks import resolve_tasks
    from sd_core.evaluate.progress import Steps
    from sd_core.plugins.specs import CLASSIFICATION

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    real, gen, out = Path(real).resolve(), Path(gen).resolve(), Path(out).resolve()
    real_rows = read_metadata(Source(real), opts.real_split)
    train_rows = read_metadata(Source(real), FLOOR_SPLIT)
    gen_rows = read_metadata(Source(gen))
    for what, rows, split in (("REAL", real_rows, opts.real_split), ("REAL", train_rows, FLOOR_SPLIT),
                              ("GEN", gen_rows, "any")):
        if not rows:
            raise SdError(f"{what}: split {split!r} has no rows")
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
    rng = np.random.default_rng(opts.seed)
    real_rows = [real_rows[i] for i in _pick(np.arange(len(real_rows)), opts.max_images, rng)]
    train_rows = [train_rows[i] for i in _pick(np.arange(len(train_rows)), opts.max_images, rng)]
    gen_rows = [gen_rows[i] for i in _pick(np.arange(len(gen_rows)), opts.max_images, rng)]
    names = list(opts.tasks) or default_tasks(gen, dataset, registry)
    tasks = resolve_tasks(names, [dataset], registry, real_rows + train_rows + gen_rows, where="--task")
    tasks = [t for t in tasks if t.kind == CLASSIFICATION]
    if not tasks:
        raise SdError(f"--task: {', '.join(names)} has no classification task to compare classes by")
    from sd_core.data.images import load_image

    size = opts.image_size or load_image(gen_rows[0], None).shape[0]
    params = _read_params(gen) or _read_params(real)
    gen_split = _generation(gen).get("split") or gen_rows[0].get("split") or "train"

    steps = Steps(console)
    result: dict[str, Any] = {
        "format": FORMAT, "real": str(real), "generated": str(gen), "dataset": dataset,
        "real_split": opts.real_split, "floor_split": FLOOR_SPLIT, "tasks": [t.name for t in tasks],
        "image_size": size, "seed": opts.seed, "max_images": opts.max_images,
        "n": {"real": len(real_rows), "real_train": len(train_rows), "generated": len(gen_rows)},
        "preprocess": {k: params.get(k) for k in ("fs", "nsamps", "resolution", "bins", "channels")} if params else None,
    }
    with steps:
        steps.begin("reading images", 3)
        imgs = {}
        for key, rows in (("real", real_rows), ("real_train", train_rows), ("generated", gen_rows)):
            imgs[key] = _load(rows, size)
            steps.advance()
        recipe = _recipe(size, opts)
        clf_holder: dict[str, Any] = {}

        def make_classifier():
            from sd_core.evaluate.runs import ensure_run, experiment_text, load_classifier

            if opts.classifier:
                clf_holder["trained_here"] = False
                return load_classifier(Path(opts.classifier), registry)
            run = out / "classifier"
            text = experiment_text(dataset, [t.name for t in tasks], real, FLOOR_SPLIT, recipe, opts.seed, run)
            clf_holder["trained_here"] = True
            return load_classifier(ensure_run(text, run, registry, project), registry)

        from sd_core.evaluate.features import FeatureContext

        ctx = FeatureContext(size, params, opts.seed, make_classifier)
        steps.begin("classifier: loading" if opts.classifier else "classifier: training on real data", 1)
        ctx.classifier()
        steps.advance()
        groups = {t.name: _class_indices(t, real_rows, train_rows, gen_rows) for t in tasks}
        result["features"], raw = _fidelity(registry, ctx, opts, imgs, groups, steps, rng)
        _headline(result)
        steps.begin("conditional accuracy", 1)
        result["conditional_accuracy"] = _conditional(ctx, tasks, imgs["generated"], gen_rows, raw.get("classifier"))
        clf = ctx._classifier
        result["classifier"] = {"run": str(clf.run), "trained_here": clf_holder.get("trained_here", False),
                                "image_size": clf.image_size, "backbone": clf.info.get("backbone"),
                                "steps": recipe.steps if clf_holder.get("trained_here") else None} if clf else None
        steps.advance()
        steps.begin("band power", 1)
        result["band_power"], figures = _band_power(params, size, imgs, tasks, real_rows, gen_rows, opts.seed)
        steps.advance()
        steps.begin("memorisation", 1)
        from sd_core.evaluate.memorisation import memorisation

        mem = memorisation(imgs["generated"], imgs["real_train"], imgs["real"], gen_rows, train_rows)
        figures["memorisation"] = (mem.pop("_d_gen"), mem.pop("_d_real"))
        result["memorisation"] = mem
        steps.advance()
        if opts.skip_utility:
            for key in ("tstr", "trts", "augmentation", "trtr"):
                result[key] = {"skipped": "--skip-utility"}
        else:
            from sd_core.evaluate.utility import utility

            seeds = [opts.seed + i for i in range(opts.utility_seeds)]
            steps.begin("utility (TSTR, TRTS, augmentation)", 3 * len(seeds))
            u = utility(dataset, [t.name for t in tasks], real, gen, gen_split, recipe, seeds,
                        out / "utility", registry, project, imgs["real"], real_rows, imgs["generated"],
                        gen_rows, steps.advance)
            for key in ("tstr", "trts", "augmentation", "trtr"):
                result[key] = {k: v for k, v in u.items() if k not in ("tstr", "trts", "augmentation", "trtr")}
                result[key]["balanced_accuracy"] = u[key]
        steps.end()
    figures["grid"] = _grid_sets(tasks, real_rows, gen_rows, imgs)
    return {"result": result, "figures": figures, "seconds": dict(steps.times)}


def _recipe(size: int, opts: Options):
    from sd_core.evaluate.runs import TrainingRecipe

    return TrainingRecipe(image_size=size, steps=opts.steps, **opts.recipe)


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


def _conditional(ctx, tasks, gen_images, gen_rows, gen_embeddings=None) -> dict[str, Any]:
    from sd_core.evaluate.runs import class_recalls

    clf = ctx.classifier()
    if gen_embeddings is not None:  # the classifier space was computed: reuse its embeddings
        outputs = clf.outputs_from_embeddings(gen_embeddings)
    else:
        outputs = clf.predict(gen_images)
    result = {}
    for t in tasks:
        own = next((x for x in clf.tasks if x.name == t.name), None)
        if own is None:
            result[t.name] = {"skipped": f"the classifier {clf.run} has no {t.name!r} head"}
            continue
        result[t.name] = class_recalls(outputs[t.name], gen_rows, own)
    return result


def _band_power(params, size, imgs, tasks, real_rows, gen_rows, seed):
    from sd_core.evaluate.bandpower import (band_means, band_statistics, class_masks, geometry,
                                            row_profile, spectrum_plot, band_features)

    if not params:
        return {"skipped": "the real folder has no preprocess.json"}, {}
    geo = geometry(params, size)
    real_u8 = imgs["real"][:, 0].numpy()
    gen_u8 = imgs["generated"][:, 0].numpy()
    rb = band_means(band_features(real_u8, geo), geo)
    gb = band_means(band_features(gen_u8, geo), geo)
    groups = {t.name: {c: (rm, class_masks(gen_rows, t)[c]) for c, rm in class_masks(real_rows, t).items()}
              for t in tasks}
    stats = band_statistics(rb, gb, geo, groups, seed)
    png = spectrum_plot(row_profile(real_u8, geo), row_profile(gen_u8, geo), geo, groups)
    return stats, {"spectrum": png}


def _grid_sets(tasks, real_rows, gen_rows, imgs, per_row: int = 6):
    """Per class of the first task: a few real and generated images (uint8 arrays)."""
    from sd_core.evaluate.bandpower import class_masks

    t = tasks[0]
    rm, gm = class_masks(real_rows, t), class_masks(gen_rows, t)
    out = []
    for c in t.classes:
        ri, gi = np.flatnonzero(rm[c]), np.flatnonzero(gm[c])
        step = max(1, len(ri) // per_row)
        out.append((f"{t.name}={c}", [imgs["real"][i, 0].numpy() for i in ri[::step][:per_row]],
                    [imgs["generated"][i, 0].numpy() for i in gi[:per_row]]))
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
