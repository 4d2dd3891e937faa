"""Old import paths of modules that moved into packages (0.1 → 0.2), kept for one release.

``import sd_core.edf`` (say) still works: it warns with a :class:`DeprecationWarning` naming the
new path, and gives a module that forwards every attribute to the new one. Nothing is imported
until an old name is asked for.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

#: old module → new module
MOVED = {
    "sd_core.captions": "sd_core.plugins.captions",
    "sd_core.channels": "sd_core.signals.channels",
    "sd_core.cli.output": "sd_core.runs.console",
    "sd_core.decimation_filter": "sd_core.signals.decimation_filter",
    "sd_core.diffusion.labels": "sd_core.data.labels",
    "sd_core.edf": "sd_core.signals.edf",
    "sd_core.experiment": "sd_core.config.experiment",
    "sd_core.hookspecs": "sd_core.plugins.hookspecs",
    "sd_core.io": "sd_core.runs.files",
    "sd_core.owned": "sd_core.runs.owned",
    "sd_core.picklable": "sd_core.plugins.picklable",
    "sd_core.plugin_checks": "sd_core.plugins.checks",
    "sd_core.progress": "sd_core.runs.progress",
    "sd_core.safe_state": "sd_core.runs.safe_state",
    "sd_core.signal": ("sd_core.signals.resample", "sd_core.signals.windows"),
    "sd_core.splits": "sd_core.preprocess.splits",
    "sd_core.synthetic": "sd_core.signals.synthetic",
    "sd_core.tracking": "sd_core.runs.tracking",
}


class _Forward(types.ModuleType):
    """A module that forwards attribute reads to the modules an old name was split into."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name)
        self.__dict__["_targets"] = targets

    def __getattr__(self, attr: str):
        for target in self.__dict__["_targets"]:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self):
        return sorted({n for t in self.__dict__["_targets"] for n in dir(importlib.import_module(t))})


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self._specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        new = MOVED[spec.name]
        targets = (new,) if isinstance(new, str) else tuple(new)
        warnings.warn(f"{spec.name} has moved to {' and '.join(targets)}; the old name will be removed "
                      "in the next release", DeprecationWarning, stacklevel=2)
        if len(targets) > 1:
            return _Forward(spec.name, targets)
        # the module itself, so that patching or reading the old name is patching the new one
        module = importlib.import_module(targets[0])
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module) -> None:
        # the import system set the old name's spec on the module: give it back its own
        own = self._specs.pop(module.__spec__.name, None)
        if own is not None:
            module.__spec__ = own


def install() -> None:
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
