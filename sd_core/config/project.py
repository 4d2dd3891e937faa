"""The project file ``sd.toml``: where it is found and its resolved values.

Search order: ``--config PATH``, else ``$SD_CONFIG``, else ``./sd.toml``, else built-in defaults.
Relative paths in a file are relative to the file's folder (to the working folder for defaults).
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover
    pass

from sd_core.config.schema import (
    PREPROCESS,
    SECTIONS,
    apply_preset,
    dataset_schema,
    defaults,
    did_you_mean,
    raise_problems,
    table_problems,
)
from sd_core.config.toml import read_toml
from sd_core.errors import ConfigError

ENV_CONFIG = "SD_CONFIG"


DEFAULT_NAME = "sd.toml"


@dataclass
class Config:
    """The resolved configuration."""

    source: Path | None
    paths: dict[str, Any]
    preprocess: dict[str, Any]
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: keys the file's [preprocess] table sets (a preset does not override them)
    preprocess_set: frozenset = frozenset()

    @property
    def base(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p)

    def raw_root(self, dataset: str) -> Path:
        own = self.datasets.get(dataset, {}).get("raw")
        return self._path(own) if own else self._path(self.paths["raw_root"]) / dataset

    def output_dir(self, dataset: str) -> Path:
        own = self.datasets.get(dataset, {}).get("output")
        return self._path(own) if own else self._path(self.paths["output_root"]) / dataset

    def preprocess_params(self, dataset: str, plugin: Any = None) -> dict[str, Any]:
        """``[preprocess]`` with the data set's own overrides applied: sd's defaults, replaced by
        the data set plugin's ``preprocess_defaults`` (``plugin``, default: the installed one),
        then by the keys the file's ``[preprocess]`` sets, then by ``[datasets.<name>]``."""
        params = copy.deepcopy(self.preprocess)
        if plugin is None:
            from sd_core.plugins.registry import get_registry

            plugin = get_registry().datasets.get(dataset)
        natural = dict(getattr(plugin, "preprocess_defaults", None) or {})
        params.update({k: copy.deepcopy(v) for k, v in natural.items()
                       if k in PREPROCESS and k not in self.preprocess_set})
        own = self.datasets.get(dataset, {})
        params.update({k: copy.deepcopy(v) for k, v in own.items() if k in PREPROCESS})
        return apply_preset(params, self.preprocess_set | set(own))

    def dataset_options(self, dataset: str, plugin: Any) -> dict[str, Any]:
        """The plugin's options with defaults filled in."""
        opts = {k: o.default for k, o in dict(getattr(plugin, "options", {}) or {}).items()}
        own = self.datasets.get(dataset, {})
        opts.update({k: v for k, v in own.items() if k in opts})
        return opts

    def channels(self, dataset: str, plugin: Any) -> list[str]:
        return list(self.datasets.get(dataset, {}).get("channels") or plugin.channels)

    def split_file(self, dataset: str) -> Path | None:
        own = self.datasets.get(dataset, {}).get("split_file")
        return self._path(own) if own else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"paths": self.paths, "preprocess": self.preprocess}
        if self.datasets:
            out["datasets"] = self.datasets
        return out


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The file the search order picks, or None for built-in defaults."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (given with --config)")
        return path.resolve()
    env = os.environ.get(ENV_CONFIG)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist (named by ${ENV_CONFIG})")
        return path.resolve()
    local = Path.cwd() / DEFAULT_NAME
    return local.resolve() if local.is_file() else None


def load_config(explicit: str | os.PathLike | None = None, registry: Any = None) -> Config:
    """Find, read, validate and resolve the configuration.

    ``registry`` (default: the process's plugin registry) is consulted only when the file has
    ``[datasets.<name>]`` sections, to check names and plugin options.
    """
    path = find_config_file(explicit)
    resolved = defaults()
    datasets: dict[str, dict[str, Any]] = {}
    explicit: set[str] = set()
    if path is not None:
        raw = read_toml(path)
        src = str(path)
        allowed = sorted([*SECTIONS, "datasets"])
        problems: list[str] = []
        for section, table in raw.items():
            if section not in allowed:
                problems.append(f"{src}: unknown section [{section}]; allowed: {', '.join(allowed)}"
                                + did_you_mean(section, allowed))
                continue
            if not isinstance(table, dict):
                problems.append(f"{src}: {section} must be a table ([{section}])")
                continue
            if section in SECTIONS:
                problems += table_problems(section, table, SECTIONS[section], src)
                resolved[section].update(copy.deepcopy(table))
                if section == "preprocess":
                    explicit |= set(table)
        if isinstance(raw.get("datasets"), dict) and raw["datasets"]:
            if registry is None:
                from sd_core.plugins.registry import get_registry

                registry = get_registry()
            for name, table in raw["datasets"].items():
                if name not in registry.datasets:
                    problems.append(f"{src}: [datasets.{name}] unknown data set {name!r}; installed: "
                                    + (", ".join(registry.datasets) or "none")
                                    + did_you_mean(name, list(registry.datasets)))
                    continue
                if not isinstance(table, dict):
                    problems.append(f"{src}: datasets.{name} must be a table ([datasets.{name}])")
                    continue
                problems += table_problems(f"datasets.{name}", table, dataset_schema(registry.datasets[name]), src)
                datasets[name] = copy.deepcopy(table)
        raise_problems(problems)
    return Config(path, resolved["paths"], resolved["preprocess"], datasets, frozenset(explicit))
