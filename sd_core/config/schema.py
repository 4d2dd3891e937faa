"""The keys ``sd.toml`` and experiment files may hold: types, defaults, help and checks, and
the validation of a table against them (with did-you-mean suggestions).

Light and plugin-free, so that the plugin contract checks and run-folder helpers can use it.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Sequence

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

from sd_core.errors import ConfigError


@dataclass(frozen=True)
class Key:
    """One allowed key: its type(s), default, help, and optional extra check."""

    types: tuple[type, ...]
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None  # returns an error text or None

    def type_name(self) -> str:
        names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
                 list: "a list", dict: "a table"}
        if set(self.types) == {int, float}:
            return "a number"
        return " or ".join(names.get(t, t.__name__) for t in self.types)


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _finite_positive(v: Any) -> str | None:
    import math

    if not math.isfinite(v):
        return "must be a finite number of Hz"
    return _positive(v)


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def _fraction(v: Any) -> str | None:
    return None if 0 <= v < 1 else "must be at least 0 and less than 1"


def _string_table(v: Mapping[str, Any]) -> str | None:
    return None if all(isinstance(x, str) for x in v.values()) else "must map data set names to folders"


def _splits(v: Mapping[str, Any]) -> str | None:
    allowed = ("train", "val", "test")
    bad = [k for k in v if k not in allowed]
    if bad:
        return f"has unknown split(s) {', '.join(bad)}; allowed: {', '.join(allowed)}"
    if not v:
        return "must name at least one split"
    for k, x in v.items():
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
            return f"split {k!r} must be a non-negative number, got {x!r}"
    total = sum(v.values())
    if abs(total - 1.0) > 1e-6:  # 0.9,0.9 would be shared out as 0.5,0.5 without a word
        return f"must add up to 1 (fractions of the subjects); these add up to {total:g}"
    return None


def _strings(v: list) -> str | None:
    return None if all(isinstance(x, str) for x in v) else "must be a list of strings"


PATHS = {
    "raw_root": Key((str,), "data/raw", "raw data sets live in <raw_root>/<dataset>"),
    "output_root": Key((str,), "data/processed", "processed data sets go to <output_root>/<dataset>"),
}


PREPROCESS = {
    "fs": Key((int, float), 125.0, "sampling rate (Hz) recordings are resampled to", check=_finite_positive),
    "nsamps": Key((int,), 2000, "samples per window (after resampling)", check=_positive),
    "overlap": Key((int, float), 0.5, "overlap of consecutive windows, as a fraction (0 ≤ x < 1)",
                   check=_fraction),
    "resolution": Key((int,), 256, "image size R (R×R pixels)", check=_positive),
    "bins": Key((str,), "log", "frequency bins", choices=("log", "linear")),
    "splits": Key((dict,), {"train": 0.8, "val": 0.1, "test": 0.1},
                  "fractions of subjects per split", check=_splits),
    "seed": Key((int,), 0, "seed of the subject split"),
    "workers": Key((int,), 1, "worker processes", check=_positive),
    "threads": Key((int,), 0, "threads per worker process (0 = the cores shared out among the workers)",
                   check=_non_negative),
    # How images are made.  The defaults give the original project's images, pixel for pixel;
    # each option below is one of sd's improvements, for models that need not match them.
    "preset": Key((str,), "original",
                  "original: images identical to the original project's (for models trained on them); "
                  "improved: all four options below at sd's improved value, for new models "
                  "(an option set explicitly still wins)", choices=("original", "improved")),
    "units": Key((str,), "V",
                 "signal units before the dB step: V (the original's: the -100 dB floor blacks out "
                 "weak bins); uV keeps them visible, choose it for new models", choices=("V", "uV")),
    "resample": Key((str,), "decimate",
                    "decimate (the original's Chebyshev IIR for integer rate ratios, polyphase otherwise); "
                    "poly (a linear-phase FIR, flatter passband, for every ratio) for new models",
                    choices=("decimate", "poly")),
    "hop": Key((str,), "original",
               "STFT hop: original (a multiple of 4 or 8 per data set); smallest (the most frames "
               "that fit the image, slightly finer time resolution) for new models",
               choices=("original", "smallest")),
    "rounding": Key((str,), "truncate",
                    "8-bit conversion: truncate (the original's); nearest (half a grey level less "
                    "bias) for new models", choices=("truncate", "nearest")),
}


#: What ``preset = "improved"`` sets, for the keys not set explicitly.
IMPROVED = {"units": "uV", "resample": "poly", "hop": "smallest", "rounding": "nearest"}


#: Keys of ``[datasets.<name>]`` besides the preprocessing overrides and the plugin's options.
DATASET = {
    "raw": Key((str,), "", "raw data folder (default <raw_root>/<dataset>)"),
    "output": Key((str,), "", "output folder (default <output_root>/<dataset>)"),
    "channels": Key((list,), [], "channels of the image, by name (default: the plugin's)", check=_strings),
    "split_file": Key((str,), "", "CSV of subject,split pinning the split assignment"),
}


SECTIONS = {"paths": PATHS, "preprocess": PREPROCESS}


def _type_ok(key: Key, value: Any) -> bool:
    if isinstance(value, bool) and bool not in key.types:
        return False
    return isinstance(value, key.types)


def did_you_mean(name: str, allowed: Sequence[str]) -> str:
    """``"; did you mean 'nsamps'?"`` for a misspelt name, else ``""``."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def table_problems(where: str, table: Mapping[str, Any], schema: Mapping[str, Key], src: str) -> list[str]:
    """Every problem of one table, each a line naming the file, the section and the key."""
    out = []
    for name, value in table.items():
        if name not in schema:
            out.append(f"{src}: [{where}] unknown key {name!r}; allowed: {', '.join(sorted(schema))}"
                       + did_you_mean(name, sorted(schema)))
            continue
        key = schema[name]
        if not _type_ok(key, value):
            out.append(f"{src}: [{where}] {name} must be {key.type_name()}, got {value!r}")
            continue
        if key.choices and value not in key.choices:
            out.append(f"{src}: [{where}] {name} = {value!r} is not allowed; allowed: "
                       + ", ".join(map(str, key.choices))
                       + (did_you_mean(value, key.choices) if isinstance(value, str) else ""))
            continue
        problem = key.check(value) if key.check else None
        if problem:
            out.append(f"{src}: [{where}] {name} {problem}, got {value!r}")
    return out


def raise_problems(problems: Sequence[str]) -> None:
    """One ConfigError listing every problem (a single one stays on one line)."""
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


def validate_table(where: str, table: Mapping[str, Any], schema: Mapping[str, Key], src: str) -> None:
    raise_problems(table_problems(where, table, schema, src))


def dataset_schema(plugin: Any) -> dict[str, Key]:
    """Allowed keys of ``[datasets.<name>]`` for a dataset plugin."""
    schema = dict(DATASET)
    schema.update(PREPROCESS)
    schema.update(option_keys(dict(getattr(plugin, "options", {}) or {})))
    return schema


def option_keys(options: Mapping[str, Any]) -> dict[str, Key]:
    """Config keys for a plugin's documented options (``OptionSpec`` per name)."""
    schema = {}
    for name, opt in options.items():
        types: tuple[type, ...] = (type(opt.default),)
        if isinstance(opt.default, float):
            types = (int, float)
        schema[name] = Key(types, opt.default, opt.help, choices=tuple(getattr(opt, "choices", ())))
    return schema


def apply_preset(params: dict[str, Any], explicit: set | frozenset = frozenset()) -> dict[str, Any]:
    """With ``preset = "improved"``, the :data:`IMPROVED` values for the keys not in ``explicit``."""
    if params.get("preset") == "improved":
        params.update({k: v for k, v in IMPROVED.items() if k not in explicit})
    return params


def defaults() -> dict[str, dict[str, Any]]:
    return {sec: {k: copy.deepcopy(key.default) for k, key in schema.items()}
            for sec, schema in SECTIONS.items()}
