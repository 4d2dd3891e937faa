"""The experiment file of ``sd meta build cfg.toml`` (one section, ``[meta]``).

```toml
[meta]
components = ["math", "parkinsons", "../generated/parkinsons"]  # data set names or folders
labels = ["gender"]             # balance over data set × class of these metadata columns
weighting = "inverse"           # inverse frequency, capped (sd train's rule) | none
max_sampling_weight = 10.0
factor = 1.0                    # copies per unit of weight (or size = rows per weighted split)
splits = ["train", "val", "test"]
weighted_splits = ["train"]     # the others are copied once per row, weight 1
```

Light: no torch import, so the schema can be validated and documented cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sd_core.config.experiment import Experiment, load_experiment, starter_experiment
from sd_core.config.schema import Key, _non_negative, _positive, _strings
from sd_core.errors import ConfigError
from sd_core.meta.weights import RULES
from sd_core.preprocess.splits import SPLIT_ORDER


def _splits(v: list) -> str | None:
    if not all(isinstance(x, str) and x in SPLIT_ORDER for x in v):
        return f"must list splits among {', '.join(SPLIT_ORDER)}"
    if len(set(v)) != len(v):
        return "lists a split twice"
    return None


def _non_empty_strings(v: list) -> str | None:
    return _strings(v) or (None if v else "must name at least one")


META = {
    "components": Key((list,), [], "processed or generated folders to combine: a data set name (its "
                      "output in sd.toml) or a folder (relative to this file)", check=_non_empty_strings),
    "labels": Key((list,), ["gender"], "metadata columns whose classes are balanced within each data "
                  "set (data set × class groups; several columns combine)", check=_strings),
    "weighting": Key((str,), "inverse", "inverse: a group of n rows weighs min(n_max / n, "
                     "max_sampling_weight), the original MetaSampler rule and sd train's; none: weight 1",
                     choices=RULES),
    "max_sampling_weight": Key((int, float), 10.0, "cap on a group's weight", check=_positive),
    "factor": Key((int, float), 1.0, "copies of a row per unit of its weight", check=_positive),
    "size": Key((int,), 0, "rows of each weighted split instead of factor (0 = use factor)",
                check=_non_negative),
    "splits": Key((list,), list(SPLIT_ORDER), "splits to build", check=_splits),
    "weighted_splits": Key((list,), ["train"], "splits whose rows are weighted and duplicated (the "
                           "others keep each row once, weight 1)", check=_splits),
    "link": Key((str,), "auto", "auto: copies (copy-on-write clones where the file system has them); "
                "copy: plain copies; hardlink: hard links where the file system allows (an image edited in "
                "place in the mix changes the component's image too)", choices=("auto", "copy", "hardlink")),
    "name": Key((str,), "", "the data set card's title (default: from the components)"),
    "out": Key((str,), "", "output folder, relative to this file (--out wins; default meta/<file name>)"),
}

SCHEMA = {"meta": META}
REQUIRED = {"meta": ("components",)}


def load_meta_experiment(path: str | Path) -> Experiment:
    exp = load_experiment(path, SCHEMA, REQUIRED)
    m = exp["meta"]
    other = sorted(set(m["weighted_splits"]) - set(m["splits"]))
    if other:
        raise exp.error("meta", "weighted_splits", f"names split(s) {', '.join(other)} not in [meta] "
                        f"splits ({', '.join(m['splits'])})")
    if not m["splits"]:
        raise exp.error("meta", "splits", "must name at least one split")
    if len(set(m["components"])) != len(m["components"]):
        raise exp.error("meta", "components", "lists a component twice")
    return exp


def out_dir(exp: Experiment, out: str | Path | None) -> Path:
    if out:
        return Path(out).expanduser().resolve()
    if exp["meta"]["out"]:
        return exp.path(exp["meta"]["out"])
    return Path.cwd() / "meta" / exp.source.stem


def starter(registry: Any) -> str:
    """``sd init --experiment meta``: a commented meta data set file with every key."""
    names = [n for n, p in registry.datasets.items() if getattr(p, "has_demo", True)] or ["math"]
    return starter_experiment("sd meta build: a weighted mix of processed (or generated) data sets",
                              SCHEMA, {"meta": {"components": names[:4], "labels": ["gender"]}})


def check_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """A ``[meta]`` table read back from meta.json (a rebuild): the same checks as the file."""
    from sd_core.config.schema import validate_table

    if not isinstance(config, dict):
        raise ConfigError(f"{where}: no [meta] configuration")
    validate_table("meta", config, META, where)
    return {**{k: key.default for k, key in META.items()}, **config}
