"""Resampling (any rational ratio, zero-phase, anti-aliased) and windowing."""

import numpy as np
import pytest

from sd_core.signals.resample import resample, resample_ratio
from sd_core.signals.windows import make_windows, window_starts


@pytest.mark.parametrize("fs_in, fs_out, ratio", [
    (256, 125, (125, 256)), (500, 250, (1, 2)), (1000, 250, (1, 4)), (512, 200, (25, 64)),
    (250, 250, (1, 1)), (128, 256, (2, 1)),
])
def test_rational_ratios(fs_in, fs_out, ratio):
    assert resample_ratio(fs_in, fs_out) == ratio
    x = np.random.default_rng(0).standard_normal((3, int(fs_in * 4)))
    assert resample(x, fs_in, fs_out).shape == (3, int(fs_out * 4))


def test_zero_phase_and_anti_alias_256_to_125():
    fs_in, fs_out = 256.0, 125.0
    t_in = np.arange(int(fs_in * 20)) / fs_in
    t_out = np.arange(int(fs_out * 20)) / fs_out
    keep = slice(int(fs_out * 2), -int(fs_out * 2))  # away from the edges
    passband = np.sin(2 * np.pi * 10.0 * t_in)
    y = resample(passband[None], fs_in, fs_out)[0]
    # same phase: the resampled sine matches the sine sampled at the new rate
    assert np.max(np.abs(y[keep] - np.sin(2 * np.pi * 10.0 * t_out)[keep])) < 0.01
    # 100 Hz is above the new Nyquist (62.5 Hz): it must not alias into the output
    alias = resample(np.sin(2 * np.pi * 100.0 * t_in)[None], fs_in, fs_out)[0]
    assert np.sqrt(np.mean(alias[keep] ** 2)) < 0.01 * np.sqrt(0.5)  # > 40 dB down


def test_zero_phase_pulse_keeps_its_time():
    fs_in, fs_out = 1000.0, 250.0
    x = np.zeros(4000)
    x[2000] = 1.0
    y = resample(x[None], fs_in, fs_out)[0]
    assert int(np.argmax(y)) == 500  # 2.000 s at either rate


def test_windows():
    starts = window_starts(2000, 500, 0.5)
    assert list(starts) == [0, 250, 500, 750, 1000, 1250, 1500]
    assert len(window_starts(499, 500, 0.5)) == 0
    assert list(window_starts(1000, 500, 0.0)) == [0, 500]
    x = np.arange(2 * 2000, dtype=float).reshape(2, 2000)
    w = make_windows(x, starts, 500)
    assert w.shape == (7, 2, 500)
    assert np.array_equal(w[3, 1], x[1, 750:1250])


def test_windows_are_a_view_where_evenly_spaced_and_make_the_same_images():
    from sd_core.spectrogram import plan_spectrogram, spectrogram_images

    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5000)) * 1e-5
    even = window_starts(5000, 512, 0.5)
    uneven = even[[0, 1, 3, 4, 7]]
    for starts in (even, uneven, even[:1]):
        w = make_windows(x, starts, 512)
        copy = np.stack([x[:, s : s + 512] for s in starts])
        assert np.array_equal(w, copy)
        assert np.shares_memory(w, x) == (len(starts) > 1 and starts is even)
        plan = plan_spectrogram(3, 512, 64)
        assert np.array_equal(spectrogram_images(w, plan), spectrogram_images(copy, plan))
    with pytest.raises(ValueError, match="do not fit"):
        make_windows(x, np.array([4800]), 512)
