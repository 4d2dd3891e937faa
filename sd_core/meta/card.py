"""``README.md`` of a meta set: a Hugging Face dataset card.

The YAML front matter is what ``huggingface_hub``'s ``DatasetCard`` and ``datasets`` read:
``configs`` (data files per split, so ``load_dataset(<folder>)`` finds the splits), the
features (class labels for the categorical labels, the image), task categories and the
licences of the components' data sets (a data set plugin's ``license`` attribute, a Hugging
Face licence id; ``unknown`` when it declares none). The body gives each component's
preprocessing parameters (its ``preprocess.json``, or ``generation.json`` for generated data),
its counts, and the weights.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sd_core.meta.weights import group_label

#: split names as Hugging Face spells them
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
#: always class labels when present (besides the balanced labels)
CATEGORICAL = ("dataset", "gender", "health")


def _dtype(values: list[str]) -> str:
    filled = [v for v in values if v != ""]
    if not filled:
        return "string"
    try:
        nums = [float(v) for v in filled]
    except ValueError:
        return "string"
    if len(filled) == len(values) and all(n.is_integer() and "." not in v and "e" not in v.lower()
                                          for n, v in zip(nums, filled)):
        return "int64"
    return "float64"


def features(plan: Any) -> list[dict[str, Any]]:
    rows = [r for s in plan.config["splits"] for r in plan.rows[s]]
    labels = [*CATEGORICAL, *(x for x in plan.config["labels"] if x not in CATEGORICAL)]
    out: list[dict[str, Any]] = [{"name": "image", "dtype": "image"}]
    for col in plan.columns:
        if col == "file_name":
            continue
        values = [str(r.get(col, "") if r.get(col) is not None else "") for r in rows]
        if col in labels and _dtype(values) == "string":
            names = sorted(set(values) - {""})
            label = {"class_label": {"names": {str(i): n for i, n in enumerate(names)}}}
            out.append({"name": col, "dtype": label})
        else:
            out.append({"name": col, "dtype": _dtype(values)})
    return out


def licences(plan: Any, registry: Any) -> list[str]:
    found = set()
    for c in plan.components:
        for ds in c.datasets:
            found.add(str(getattr(registry.datasets.get(ds), "license", "") or "unknown"))
    return sorted(found) or ["unknown"]


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def front_matter(plan: Any, registry: Any) -> dict[str, Any]:
    splits = [s for s in plan.config["splits"] if plan.rows[s]]
    total = sum(len(plan.rows[s]) for s in splits)
    lic = licences(plan, registry)
    return {
        "pretty_name": title(plan),
        "license": lic[0] if len(lic) == 1 else lic,
        "task_categories": ["image-classification", "text-to-image"],
        "tags": ["eeg", "spectrogram", "sd"],
        "size_categories": [_size_category(total)],
        "configs": [{"config_name": "default", "default": True,
                     "data_files": [{"split": HF_SPLITS[s], "path": f"{s}/**"} for s in splits]}],
        "dataset_info": {"features": features(plan)},
    }


def title(plan: Any) -> str:
    return plan.config["name"] or "sd meta data set (" + ", ".join(c.name for c in plan.components) + ")"


def _params(c: Any) -> dict[str, Any]:
    if c.kind == "processed":
        return {"parameters": c.info.get("parameters", {}), "versions": c.info.get("versions", {})}
    if c.kind == "generated":
        return {k: v for k, v in c.info.items() if k not in ("seconds", "per_subject")}
    return {}


def card_text(plan: Any, record: Mapping[str, Any], registry: Any) -> str:
    import yaml

    cfg = plan.config
    lines = ["---", yaml.safe_dump(front_matter(plan, registry), sort_keys=False, allow_unicode=True,
                                   width=100).rstrip(), "---", "", f"# {title(plan)}", "",
             "EEG spectrogram images made with `sd` (one 8-bit grey PNG per window of a recording), "
             "combined from the components below and weighted by data set × class of "
             f"{', '.join(cfg['labels']) or '(no label)'} (`weighting = \"{cfg['weighting']}\"`, "
             f"`max_sampling_weight = {cfg['max_sampling_weight']}`; weighted splits: "
             f"{', '.join(cfg['weighted_splits']) or 'none'}). A row of weight w appears about "
             "w × factor times (copies of one image); `weight` gives w and `source` "
             "the component's file. Read it unbalanced: it is balanced already.", "",
             *(["**The images are hard links to the components' files** (`link = \"hardlink\"`): "
                "editing one in place (saving over it) changes the component's image too. Copy before "
                "editing.", ""] if cfg["link"] == "hardlink" else []),
             "```python", "from datasets import load_dataset", "ds = load_dataset(\"imagefolder\", "
             "data_dir=\"<this folder>\")  # or load_dataset(\"<this folder>\")", "```", "",
             "## Components", "",
             "| component | kind | data sets | licence | "
             + " | ".join(f"{s} rows → meta" for s in cfg["splits"]) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in cfg["splits"]) + " |"]
    for c in plan.components:
        made = {s: sum(1 for r in plan.rows[s] if r["source"].startswith(c.name + "/"))
                for s in cfg["splits"]}
        had = {s: sum(1 for r in c.rows if r.get("split") == s) for s in cfg["splits"]}
        lic = ", ".join(str(getattr(registry.datasets.get(d), "license", "") or "unknown")
                        for d in c.datasets)
        lines.append(f"| {c.name} | {c.kind} | {', '.join(c.datasets)} | {lic} | "
                     + " | ".join(f"{had[s]} → {made[s]}" for s in cfg["splits"]) + " |")
    for c in plan.components:
        params = _params(c)
        if params:
            lines += ["", f"### {c.name}: {'preprocessing' if c.kind == 'processed' else 'generation'}", "",
                      "```json", json.dumps(params, indent=2, sort_keys=True, ensure_ascii=False), "```"]
    for split, diag in plan.diagnostics.items():
        lines += ["", f"## Weights: {split}", "",
                  "| data set × class | rows | weight | copies | share before | after | expected |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {group_label((d['dataset'], d['class']))} | {d['rows']} | {d['weight']:.4g} | "
                  f"{d['copies']} | {d['share_before']:.2%} | {d['share_after']:.2%} | "
                  f"{d['share_expected']:.2%} |" for d in diag]
    lines += ["", "Rebuild with `sd meta rebuild <this folder>` (meta.json records the configuration "
              "and the components).", ""]
    return "\n".join(lines)
