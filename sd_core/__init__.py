"""sd: EEG recordings to spectrogram images, classifiers and conditional diffusion models.

Plugins implement the hooks of :mod:`sd_core.plugins.hookspecs` with the ``hookimpl`` marker::

    from sd_core import hookimpl

    @hookimpl
    def sd_datasets():
        return [MyDataset()]

Where each part lives, and which may import which: ``docs/architecture.md``.
"""

import pluggy

from sd_core._moved import install as _install_moved

__version__ = "0.1.0"

PROJECT = "sd"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

_install_moved()

__all__ = ["hookimpl", "hookspec", "__version__", "PROJECT"]
