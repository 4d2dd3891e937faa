"""Finding, loading and querying plugins.

Plugins are distributions with entry points in the group ``sd``. They are loaded once per
process, on first use, through :func:`get_registry`. ``SD_LOAD_PLUGINS`` (comma-separated
distribution names) restricts which are loaded; an empty value loads none. The core's own
built-ins (``sd_core.builtin.hooks``) are always registered.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any, Callable

import pluggy

from sd_core import PROJECT, __version__
from sd_core.errors import PluginError
from sd_core.plugins import hookspecs
from sd_core.plugins.checks import (  # noqa: F401 (HOOK_ITEM_TYPES and describe_exception: public here too)
    HOOK_ITEM_TYPES,
    check_hook_result,
    describe_exception,
    preprocess_defaults_problem,
    task_columns_problem,
)

ENTRY_POINT_GROUP = PROJECT
ENV_LOAD = "SD_LOAD_PLUGINS"
CORE_NAME = "sd-core"
#: the module holding the core's own hook implementations, registered as ``sd-core``
BUILTIN_MODULE = "sd_core.builtin.hooks"


def normalize_dist_name(name: str) -> str:
    """PEP 503 normalisation, so that ``sd_math``, ``SD.Math`` and ``sd-math`` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


@dataclass
class PluginInfo:
    """One plugin as ``sd plugins`` shows it."""

    name: str
    version: str
    module: str
    status: str  # "loaded", "failed" or "builtin"
    error: str | None = None
    provides: dict[str, list[str]] = field(default_factory=dict)


def _warn(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


class Registry:
    """All loaded plugins and what they contribute. Use :func:`get_registry`."""

    def __init__(self, warn: Callable[[str], None] = _warn) -> None:
        self._warn = warn
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._load()

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        # By name, as simonw/llm loads its default plugins: the core's contributions sit above the
        # stages they reach into (evaluate, diffusion), and the registry must not import upwards.
        builtin = importlib.import_module(BUILTIN_MODULE)
        self.pm.register(builtin, name=CORE_NAME)
        self.plugins[CORE_NAME] = PluginInfo(CORE_NAME, __version__, builtin.__name__, "builtin")

        wanted = os.environ.get(ENV_LOAD)
        wanted_names = None
        if wanted is not None:
            wanted_names = {normalize_dist_name(n) for n in wanted.split(",") if n.strip()}

        seen: set[str] = set()
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            dist_name = normalize_dist_name(dist.name) if dist is not None else ep.name
            version = dist.version if dist is not None else "?"
            key = f"{dist_name}:{ep.name}"
            if key in seen or dist_name == CORE_NAME:
                continue
            seen.add(key)
            if wanted_names is not None and dist_name not in wanted_names:
                continue
            name = dist_name if dist_name not in self.plugins else key
            try:
                obj = ep.load()
                self.pm.register(obj, name=name)
            except (Exception, SystemExit) as exc:  # a broken plugin must not take the CLI down
                err = describe_exception(exc)
                self.plugins[name] = PluginInfo(name, version, ep.value, "failed", err)
                self._warn(f"plugin {name!r} failed to load ({err}); continuing without it")
                continue
            self.plugins[name] = PluginInfo(name, version, ep.value, "loaded")
            self._check_unmarked(obj, name)
        self._check_hook_names()

        if wanted_names:
            missing = sorted(wanted_names - {normalize_dist_name(n.split(":")[0]) for n in self.plugins})
            for n in missing:
                self._warn(f"{ENV_LOAD} names {n!r}, which is not an installed sd plugin")

    def _check_unmarked(self, obj: Any, name: str) -> None:
        """Warn of a function named like a hook but without ``@hookimpl``: pluggy silently skips it,
        so the plugin would load and contribute nothing."""
        specs = {n for n, h in vars(self.pm.hook).items() if not n.startswith("_") and h.has_spec()}
        unmarked = sorted(n for n in specs if callable(getattr(obj, n, None))
                          and self.pm.parse_hookimpl_opts(obj, n) is None)
        if unmarked:
            self._warn(f"plugin {name!r} defines {', '.join(unmarked)} without @hookimpl, so sd never calls "
                       "it; decorate it with @sd_core.hookimpl")

    def _check_hook_names(self) -> None:
        """Leave out, by name, every plugin implementing a hook that does not exist (a misspelt
        ``sd_dataset`` would otherwise never be called). pluggy's ``check_pending`` finds them;
        ``@hookimpl(optionalhook=True)`` marks a hook that only newer versions of sd define."""
        specs = sorted(n for n, h in vars(self.pm.hook).items() if not n.startswith("_") and h.has_spec())
        for _ in range(len(self.pm.get_plugins()) + 1):
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                obj = exc.plugin
            name = self.pm.get_name(obj) or repr(obj)
            unknown = sorted(
                n for n, h in vars(self.pm.hook).items()
                if not n.startswith("_") and not h.has_spec()
                and any(i.plugin is obj and not i.optionalhook for i in h.get_hookimpls())
            )
            parts = []
            for hook in unknown:
                close = difflib.get_close_matches(hook, specs, n=1)
                hint = f"did you mean {close[0]}?" if close else f"the hooks are {', '.join(specs)}"
                parts.append(f"unknown hook {hook}, {hint}")
            err = "; ".join(parts)
            self.pm.unregister(obj)
            self.mark_failed(name, err)
            self._warn(f"plugin {name!r} failed to load ({err}); continuing without it")

    def mark_failed(self, plugin: str, error: str) -> None:
        """Record that ``plugin`` failed, with ``error`` (what ``sd plugins`` shows)."""
        info = self.plugins.get(plugin)
        if info is None:
            return
        info.status = "failed"
        if info.error is None:
            info.error = error
        elif error not in info.error.split("; "):
            info.error = f"{info.error}; {error}"

    # -- contributions -----------------------------------------------------------------------

    def collect(self, hook: str) -> list[tuple[str, Any]]:
        """(plugin name, item) for every item every plugin returns from ``hook``.

        Each plugin's implementation is called on its own, so that one raising is reported
        by name and the others still contribute.
        """
        cache = self.__dict__.setdefault("_collected", {})
        if hook in cache:
            return cache[hook]
        out: list[tuple[str, Any]] = []
        # pluggy lists implementations last-registered first; keep registration order
        caller = getattr(self.pm.hook, hook, None)  # None: no spec and no implementation
        for impl in reversed(caller.get_hookimpls() if caller is not None else []):
            plugin = self.pm.get_name(impl.plugin) or "?"
            try:
                items = impl.function()
                problem = check_hook_result(hook, items)
            except (Exception, SystemExit) as exc:
                problem = f"raised {describe_exception(exc)}"
            if problem is not None:
                self.mark_failed(plugin, f"{hook} {problem}")
                self._warn(f"hook {hook} of plugin {plugin!r} {problem}; continuing without its contribution")
                continue
            out.extend((plugin, item) for item in items)
        for plugin, item in out:
            info = self.plugins.get(plugin)
            if info is not None:
                label = getattr(item, "name", None) or str(item)
                if hook == "sd_tasks":
                    label = f"{item.dataset}.{item.name}"
                info.provides.setdefault(hook.removeprefix("sd_"), []).append(label)
        cache[hook] = out
        return out

    def _keyed(self, hook: str) -> tuple[dict, dict[Any, str], list[tuple[str, str, str]]]:
        """Items of a named hook by key, their owners, and per name registered twice: a message
        naming both plugins and what to do, and the two plugins."""
        what, key = UNIQUE_NAMES[hook]
        items: dict[Any, Any] = {}
        owners: dict[Any, str] = {}
        clashes: list[tuple[str, str, str]] = []
        for plugin, item in self.collect(hook):
            k = key(item)
            if k in items:
                shown = ".".join(k) if isinstance(k, tuple) else k
                if owners[k] == plugin:
                    message = f"{what} {shown!r} is registered twice by {plugin!r}; fix the plugin"
                else:
                    message = (f"{what} {shown!r} is registered by both {owners[k]!r} and {plugin!r}; "
                               f"uninstall one of them or leave one out with {ENV_LOAD}")
                clashes.append((message, owners[k], plugin))
                continue
            items[k] = item
            owners[k] = plugin
        return items, owners, clashes

    def _unique(self, hook: str) -> dict:
        items, owners, clashes = self._keyed(hook)
        if clashes:
            raise PluginError(clashes[0][0])
        self.__dict__.setdefault("_owners", {})[hook] = owners
        return items

    def check_clashes(self) -> list[str]:
        """Find names two plugins share, without raising: both plugins are marked as failed (for
        ``sd plugins``) and a warning names them. Returns the messages."""
        found = []
        for hook in UNIQUE_NAMES:
            for message, first, second in self._keyed(hook)[2]:
                self.mark_failed(first, message.split("; ")[0])
                self.mark_failed(second, message.split("; ")[0])
                self._warn(message)
                found.append(message)
        return found

    def invalid_contributions(self) -> dict[str, dict[Any, str]]:
        """Data sets and tasks that are refused, by hook and key, with why: a data set whose
        ``preprocess_defaults`` are not valid ``[preprocess]`` values, a task reading a metadata
        column its data set does not have. Each is reported once (a warning naming the plugin and
        the hook, the plugin marked failed for ``sd plugins``) and left out of the listings."""
        found = self.__dict__.get("_invalid")
        if found is not None:
            return found
        found = {"sd_datasets": {}, "sd_tasks": {}}
        self.__dict__["_invalid"] = found
        datasets, owners, _ = self._keyed("sd_datasets")
        for name, plugin in datasets.items():
            problem = preprocess_defaults_problem(plugin)
            if problem:
                found["sd_datasets"][name] = problem
                self._refuse("sd_datasets", owners[name], f"data set {name!r} {problem}")
        names = [d.name for _, d in self.collect("sd_datasets")]
        clashing = {n for n in names if names.count(n) > 1}  # an error of its own; which one is meant?
        tasks, owners, _ = self._keyed("sd_tasks")
        for key, task in tasks.items():
            if key[0] not in datasets or key[0] in found["sd_datasets"] or key[0] in clashing:
                continue
            problem = task_columns_problem(task, datasets[key[0]])
            if problem:
                found["sd_tasks"][key] = problem
                self._refuse("sd_tasks", owners[key], problem)
        return found

    def _refuse(self, hook: str, plugin: str, problem: str) -> None:
        self.mark_failed(plugin, f"{hook}: {problem}")
        self._warn(f"hook {hook} of plugin {plugin!r}: {problem}; continuing without it")

    def owner(self, hook: str, key: Any) -> str:
        """The plugin that registered ``key`` through ``hook``."""
        getattr(self, hook.removeprefix("sd_"))  # make sure the table exists
        return self.__dict__["_owners"][hook][key]

    @cached_property
    def datasets(self) -> dict[str, Any]:
        """Data set name → :class:`~sd_core.plugins.dataset.DatasetPlugin`, sorted by name."""
        found = self._unique("sd_datasets")
        bad = self.invalid_contributions()["sd_datasets"]
        return {k: v for k, v in sorted(found.items()) if k not in bad}

    @cached_property
    def tasks(self) -> dict[tuple[str, str], Any]:
        """(data set, task name) → TaskSpec, for installed data sets only."""
        found = self._unique("sd_tasks")
        bad = self.invalid_contributions()["sd_tasks"]
        return {k: v for k, v in sorted(found.items()) if k[0] in self.datasets and k not in bad}

    @cached_property
    def backbones(self) -> dict[str, Any]:
        return dict(sorted(self._unique("sd_backbones").items()))

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return dict(sorted(self._unique("sd_metrics").items()))

    @cached_property
    def diffusion_models(self) -> dict[str, Any]:
        """Kinds of ``sd diffusion train`` ([model] kind): name → DiffusionModelSpec, by name."""
        return dict(sorted(self._unique("sd_diffusion_models").items()))

    @cached_property
    def feature_extractors(self) -> dict[str, Any]:
        """Feature spaces of ``sd evaluate`` (FeatureExtractorSpec), in registration order."""
        return self._unique("sd_feature_extractors")

    @cached_property
    def set_metrics(self) -> dict[str, Any]:
        """Set-level metrics of ``sd evaluate`` (SetMetricSpec), in registration order."""
        return self._unique("sd_set_metrics")

    @cached_property
    def cli_commands(self) -> list[tuple[str, Any]]:
        return self.collect("sd_cli_commands")

    # -- lookups with helpful errors ----------------------------------------------------------

    def dataset(self, name: str) -> Any:
        try:
            return self.datasets[name]
        except KeyError:
            raise PluginError(unknown_name("data set", name, self.datasets)) from None

    def tasks_of(self, dataset: str) -> list[Any]:
        self.dataset(dataset)
        return [t for (d, _), t in self.tasks.items() if d == dataset]

    def task(self, dataset: str, name: str) -> Any:
        found = {t.name: t for t in self.tasks_of(dataset)}
        if name not in found:
            raise PluginError(unknown_name(f"task of data set {dataset!r}", name, found))
        return found[name]

    def backbone(self, name: str) -> Any:
        if name not in self.backbones:
            raise PluginError(unknown_name("backbone", name, self.backbones))
        return self.backbones[name]

    def diffusion_model(self, name: str) -> Any:
        if name not in self.diffusion_models:
            raise PluginError(unknown_name("diffusion model kind", name, self.diffusion_models))
        return self.diffusion_models[name]

    def metric(self, name: str) -> Any:
        if name not in self.metrics:
            raise PluginError(unknown_name("metric", name, self.metrics))
        return self.metrics[name]


#: Hooks whose items must have unique names: hook → (what an item is called, its key).
UNIQUE_NAMES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "sd_datasets": ("data set", lambda d: d.name),
    "sd_tasks": ("task", lambda t: (t.dataset, t.name)),
    "sd_backbones": ("backbone", lambda b: b.name),
    "sd_metrics": ("metric", lambda m: m.name),
    "sd_diffusion_models": ("diffusion model kind", lambda m: m.name),
    "sd_feature_extractors": ("feature extractor", lambda f: f.name),
    "sd_set_metrics": ("set metric", lambda m: m.name),
}


def unknown_name(what: str, name: str, allowed) -> str:
    from sd_core.config.schema import did_you_mean

    names = ", ".join(sorted(allowed)) or "none installed"
    return f"unknown {what} {name!r}; allowed: {names}" + did_you_mean(name, sorted(allowed))


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loading plugins on first call."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget loaded plugins (tests, or after installing a plugin in a running process)."""
    global _REGISTRY
    _REGISTRY = None
    importlib.invalidate_caches()  # see distributions installed since the last scan
