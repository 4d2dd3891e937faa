"""sd: EEG recordings to spectrogram images, classifiers and conditional diffusion models.

Plugins implement the hooks of :mod:`sd_core.hookspecs` with the ``hookimpl`` marker::

    from sd_core import hookimpl

    @hookimpl
    def sd_datasets():
        return [MyDataset()]
"""

import pluggy

__version__ = "0.1.0"

PROJECT = "sd"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["hookimpl", "hookspec", "__version__", "PROJECT"]
