"""Finding, loading and querying plugins.

Plugins are distributions with entry points in the group ``sd``. They are loaded once per
process, on first use, through :func:`get_registry`. ``SD_LOAD_PLUGINS`` (comma-separated
distribution names) restricts which are loaded; an empty value loads none. The core's own
built-ins (``sd_core.builtin``) are always registered.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from typing import Any, Callable

import pluggy

from sd_core import PROJECT, __version__, hookspecs
from sd_core.errors import PluginError

ENTRY_POINT_GROUP = PROJECT
ENV_LOAD = "SD_LOAD_PLUGINS"
CORE_NAME = "sd-core"


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
        from sd_core import builtin

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
            except Exception as exc:  # a broken plugin must not take the CLI down
                err = f"{type(exc).__name__}: {exc}"
                self.plugins[name] = PluginInfo(name, version, ep.value, "failed", err)
                self._warn(f"plugin {name!r} failed to load ({err}); continuing without it")
                continue
            self.plugins[name] = PluginInfo(name, version, ep.value, "loaded")

        if wanted_names:
            missing = sorted(wanted_names - {normalize_dist_name(n.split(":")[0]) for n in self.plugins})
            for n in missing:
                self._warn(f"{ENV_LOAD} names {n!r}, which is not an installed sd plugin")

    def _fail(self, plugin: str, hook: str, exc: BaseException) -> None:
        info = self.plugins.get(plugin)
        err = f"{hook}: {type(exc).__name__}: {exc}"
        if info is not None:
            info.status = "failed"
            info.error = err if info.error is None else f"{info.error}; {err}"
        self._warn(f"plugin {plugin!r} failed in {err}; continuing without its contribution")

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
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            plugin = self.pm.get_name(impl.plugin) or "?"
            try:
                items = impl.function() or []
                items = list(items)
            except Exception as exc:
                self._fail(plugin, hook, exc)
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

    def _unique(self, hook: str, what: str, key: Callable[[Any], Any] = lambda x: x.name) -> dict:
        items: dict[Any, Any] = {}
        owners: dict[Any, str] = {}
        for plugin, item in self.collect(hook):
            k = key(item)
            if k in items:
                shown = ".".join(k) if isinstance(k, tuple) else k
                raise PluginError(
                    f"{what} {shown!r} is registered by both {owners[k]!r} and {plugin!r}; "
                    f"uninstall one of them or leave one out with {ENV_LOAD}"
                )
            items[k] = item
            owners[k] = plugin
        self.__dict__.setdefault("_owners", {})[hook] = owners
        return items

    def owner(self, hook: str, key: Any) -> str:
        """The plugin that registered ``key`` through ``hook``."""
        getattr(self, hook.removeprefix("sd_"))  # make sure the table exists
        return self.__dict__["_owners"][hook][key]

    @cached_property
    def datasets(self) -> dict[str, Any]:
        """Data set name → :class:`~sd_core.dataset.DatasetPlugin`, sorted by name."""
        found = self._unique("sd_datasets", "data set")
        return dict(sorted(found.items()))

    @cached_property
    def tasks(self) -> dict[tuple[str, str], Any]:
        """(data set, task name) → TaskSpec, for installed data sets only."""
        found = self._unique("sd_tasks", "task", key=lambda t: (t.dataset, t.name))
        return {k: v for k, v in sorted(found.items()) if k[0] in self.datasets}

    @cached_property
    def backbones(self) -> dict[str, Any]:
        return dict(sorted(self._unique("sd_backbones", "backbone").items()))

    @cached_property
    def metrics(self) -> dict[str, Any]:
        return dict(sorted(self._unique("sd_metrics", "metric").items()))

    @cached_property
    def feature_extractors(self) -> dict[str, Any]:
        """Feature spaces of ``sd evaluate`` (FeatureExtractorSpec), in registration order."""
        return self._unique("sd_feature_extractors", "feature extractor")

    @cached_property
    def set_metrics(self) -> dict[str, Any]:
        """Set-level metrics of ``sd evaluate`` (SetMetricSpec), in registration order."""
        return self._unique("sd_set_metrics", "set metric")

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

    def metric(self, name: str) -> Any:
        if name not in self.metrics:
            raise PluginError(unknown_name("metric", name, self.metrics))
        return self.metrics[name]


def unknown_name(what: str, name: str, allowed) -> str:
    names = ", ".join(sorted(allowed)) or "none installed"
    return f"unknown {what} {name!r}; allowed: {names}"


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
