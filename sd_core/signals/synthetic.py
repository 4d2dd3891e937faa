"""Plausible synthetic EEG for demo data sets and tests.

A 1/f ("pink") background, an alpha rhythm, optional theta and line noise, and optional
high-amplitude rhythmic discharges; every effect a data set's demo wants to make learnable is
a parameter. Values are in volts (as MNE expects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rhythm:
    """A band-limited oscillation: centre frequency (Hz), amplitude (µV), relative bandwidth."""

    freq: float
    amplitude_uv: float
    bandwidth: float = 0.1


def pink_noise(rng: np.random.Generator, n_channels: int, n_samples: int, exponent: float = 1.0) -> np.ndarray:
    """Noise with power spectral density ∝ 1/f**exponent, unit standard deviation per channel."""
    spec = rng.standard_normal((n_channels, n_samples // 2 + 1)) + 1j * rng.standard_normal(
        (n_channels, n_samples // 2 + 1))
    f = np.arange(n_samples // 2 + 1, dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (-exponent / 2)
    spec[:, 0] = 0
    x = np.fft.irfft(spec, n=n_samples, axis=-1)
    return x / (x.std(axis=-1, keepdims=True) + 1e-12)


def narrowband(rng: np.random.Generator, n_channels: int, n_samples: int, fs: float, rhythm: Rhythm) -> np.ndarray:
    """Gaussian-shaped narrow band noise around ``rhythm.freq`` with RMS ``amplitude_uv`` µV."""
    spec = rng.standard_normal((n_channels, n_samples // 2 + 1)) + 1j * rng.standard_normal(
        (n_channels, n_samples // 2 + 1))
    f = np.fft.rfftfreq(n_samples, 1.0 / fs)
    width = max(rhythm.freq * rhythm.bandwidth, 0.2)
    spec *= np.exp(-0.5 * ((f - rhythm.freq) / width) ** 2)
    x = np.fft.irfft(spec, n=n_samples, axis=-1)
    return x / (x.std(axis=-1, keepdims=True) + 1e-12) * rhythm.amplitude_uv


def eeg(
    rng: np.random.Generator,
    n_channels: int,
    n_samples: int,
    fs: float,
    background_uv: float = 20.0,
    rhythms: tuple[Rhythm, ...] = (Rhythm(10.0, 10.0),),
    line_hz: float | None = 50.0,
    line_uv: float = 2.0,
) -> np.ndarray:
    """(channels, samples) synthetic EEG in volts."""
    x = pink_noise(rng, n_channels, n_samples) * background_uv
    for r in rhythms:
        x += narrowband(rng, n_channels, n_samples, fs, r)
    if line_hz:
        t = np.arange(n_samples) / fs
        phase = rng.uniform(0, 2 * np.pi, size=(n_channels, 1))
        x += line_uv * np.sin(2 * np.pi * line_hz * t[None, :] + phase)
    return x * 1e-6


def discharge(n_samples: int, fs: float, start: float, stop: float, freq: float = 3.0,
              amplitude_uv: float = 150.0) -> np.ndarray:
    """A high-amplitude rhythmic (spike-wave-like) discharge between ``start`` and ``stop`` seconds,
    as a (samples,) trace in volts, zero elsewhere; add it to the channels a seizure involves."""
    t = np.arange(n_samples) / fs
    inside = (t >= start) & (t < stop)
    wave = np.sign(np.sin(2 * np.pi * freq * t)) * np.abs(np.sin(2 * np.pi * freq * t)) ** 3
    return np.where(inside, wave * amplitude_uv * 1e-6, 0.0)
