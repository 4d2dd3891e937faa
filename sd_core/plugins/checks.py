"""Checks of what plugins contribute: each hook's return value, a task's columns against its
data set, a data set's preprocessing defaults, and one line for an exception a plugin raised.
Used by :mod:`sd_core.plugins` when it collects the hooks' results."""

from __future__ import annotations

import importlib
from typing import Any


def describe_exception(exc: BaseException) -> str:
    """One line for an exception a plugin raised (``sys.exit`` included)."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


#: What the items of each hook's list must be: hook → (module, class), imported when first checked.
#: A hook not listed here must still return a list. Add new hooks here with their hook spec.
HOOK_ITEM_TYPES: dict[str, tuple[str, str]] = {
    "sd_datasets": ("sd_core.plugins.dataset", "DatasetPlugin"),
    "sd_tasks": ("sd_core.plugins.specs", "TaskSpec"),
    "sd_backbones": ("sd_core.plugins.specs", "BackboneSpec"),
    "sd_metrics": ("sd_core.plugins.specs", "MetricSpec"),
    "sd_diffusion_models": ("sd_core.plugins.specs", "DiffusionModelSpec"),
    "sd_feature_extractors": ("sd_core.plugins.specs", "FeatureExtractorSpec"),
    "sd_set_metrics": ("sd_core.plugins.specs", "SetMetricSpec"),
    "sd_cli_commands": ("click", "Command"),
}


def _what(obj: Any) -> str:
    """How a wrong return value is named in messages: ``str``, ``None``, ``the class D``."""
    if obj is None:
        return "None"
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    return type(obj).__name__


def check_hook_result(hook: str, result: Any) -> str | None:
    """Why ``result`` is not what ``hook`` must return (a list of the documented objects, each
    with a name), or None when it is."""
    module, cls_name = HOOK_ITEM_TYPES.get(hook, ("builtins", "object"))
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except (ImportError, AttributeError):  # a table entry ahead of its class: check the list only
        cls = object
    shown = cls_name if module.startswith("sd_core") else f"{module}.{cls_name}"
    expected = f"expected a list of {shown}" if cls is not object else "expected a list"
    if not isinstance(result, (list, tuple)):
        return f"returned {_what(result)}, {expected}"
    for i, item in enumerate(result):
        if isinstance(item, cls):
            name = getattr(item, "name", "?")
            if not (isinstance(name, str) and name.strip()):
                return f"returned a {cls_name} with name {name!r} (item {i}), expected a non-empty string"
            continue
        if isinstance(item, type) and issubclass(item, cls):
            return (f"returned a list holding the class {item.__qualname__}, not an instance (item {i}), "
                    f"{expected} (return {item.__qualname__}())")
        return f"returned a list holding {_what(item)} (item {i}), {expected}"
    return None


def task_columns_problem(task: Any, dataset: Any) -> str | None:
    """Why ``task`` (a TaskSpec) cannot be read from the rows of ``dataset`` (a DatasetPlugin):
    a column that is neither the data set's own nor one every row has; None when it can."""
    from sd_core.plugins.specs import ROW_COLUMNS

    own = [str(c) for c in (getattr(dataset, "columns", ()) or ())]
    missing = [c for c in task.columns if c not in own and c not in ROW_COLUMNS]
    if not missing:
        return None
    what = "column " + repr(missing[0]) if len(missing) == 1 else "columns " + ", ".join(map(repr, missing))
    return (f"task '{task.dataset}.{task.name}' reads {what}, which data set {task.dataset!r} does "
            f"not have; allowed: {', '.join(own) + ' (its columns), ' if own else ''}"
            f"{', '.join(ROW_COLUMNS)} (every row's)")


def preprocess_defaults_problem(dataset: Any) -> str | None:
    """Why a DatasetPlugin's ``preprocess_defaults`` are not valid ``[preprocess]`` values."""
    from sd_core.config.schema import PREPROCESS, validate_table
    from sd_core.errors import ConfigError

    given = getattr(dataset, "preprocess_defaults", None) or {}
    if not hasattr(given, "items"):
        return f"has preprocess_defaults {_what(given)}, expected a mapping of [preprocess] keys"
    try:
        validate_table("preprocess", dict(given), PREPROCESS, "preprocess_defaults")
    except ConfigError as exc:
        return f"has {exc}"
    return None
