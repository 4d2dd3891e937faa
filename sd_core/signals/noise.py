"""Gaussian noise of a given amplitude spectrum: the building block of the synthetic EEG model."""

from __future__ import annotations

import numpy as np


def spectral_noise(rng: np.random.Generator, n_channels: int, n: int, fs: float, shape) -> np.ndarray:
    """Gaussian noise with amplitude spectrum ``shape(f)``, unit RMS per channel."""
    spec = rng.standard_normal((n_channels, n // 2 + 1)) + 1j * rng.standard_normal((n_channels, n // 2 + 1))
    f = np.fft.rfftfreq(n, 1.0 / fs)
    spec *= shape(f)
    spec[:, 0] = 0
    x = np.fft.irfft(spec, n=n, axis=-1)
    return x / (x.std(axis=-1, keepdims=True) + 1e-12)
