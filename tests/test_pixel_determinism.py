"""A window's pixels depend on the window only: not on the BLAS kernel, the threads or the batch.

float32 products round differently on other processors (OpenBLAS picks its kernel per CPU and
per matrix shape), so a bin whose exact value lies beside a grey-level boundary used to round
either way: one pixel apart on an AMD EPYC with ``OPENBLAS_CORETYPE=Haswell``.  The engine now
recomputes in float64 every bin within its error bound of a boundary, and every frame that
could hold a strip's extremes; these tests force other kernels, thread counts and batches, and
compare with the float64 definition bin by bin.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_spectrogram import EDF, reference_db

from sd_core.spectrogram import plan_spectrogram, spectrogram_image, spectrogram_images
from sd_core.spectrogram.threads import thread_limit

ROOT = Path(__file__).resolve().parents[1]


def windows(n: int = 24, C: int = 19, ns: int = 1000, seed: int = 0) -> np.ndarray:
    """EEG-like windows in volts: 1/f (integrated noise), an alpha rhythm, white noise."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.standard_normal((n, C, ns)), axis=-1) * 2e-7
    t = np.arange(ns) / 125.0
    alpha = 1e-5 * rng.lognormal(0, 0.5, (n, C, 1)) * np.sin(2 * np.pi * rng.normal(10, 1, (n, 1, 1)) * t)
    return walk + alpha + rng.standard_normal((n, C, ns)) * 2e-6


def grey_values(x: np.ndarray, R: int) -> np.ndarray:
    """The definition's grey values before truncation, (R, R) float64, image layout; -1 off strip."""
    strips = reference_db(x, R)
    F = strips[0].shape[1]
    out = np.full((R, R), -1.0)
    x0 = (R - len(strips) * F) // 2
    for c, db in enumerate(strips):
        lo, hi = db.min(), db.max()
        out[:, x0 + c * F : x0 + (c + 1) * F] = ((db - lo) / (hi - lo) * 255.0)[::-1]
    return out


@pytest.mark.parametrize("R", [64, 128, 256])
def test_every_pixel_is_the_float64_definition_away_from_a_boundary(R):
    """Outside a 1e-6 grey-level band around each integer (where the definition's own float64
    rounding decides), every pixel is the float64 definition's, bin for bin; before, about one
    pixel in a thousand was one grey level off."""
    xs = windows(6, C=4 if R == 64 else 19, ns=500 if R == 64 else 1000)
    plan = plan_spectrogram(xs.shape[1], xs.shape[2], R, "log")
    got = spectrogram_images(xs, plan)
    compared = 0
    for i, x in enumerate(xs):
        sure, want = decided(grey_values(x, R))
        assert np.array_equal(got[i][sure], want), np.count_nonzero(got[i][sure] != want)
        compared += int(sure.sum())
    assert compared > 6 * 0.5 * R * R * 0.9


def decided(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels whose definition value is an integer (the floor, a strip's ends) or more than 1e-6
    from one, and their grey levels; at most one in a thousand pixels is left out."""
    inside = v >= 0
    dist = np.abs(v - np.rint(v))
    sure = inside & ((dist == 0) | (dist > 1e-6))
    assert sure.sum() >= 0.999 * inside.sum()
    return sure, np.floor(v[sure]).astype(np.uint8)


def test_real_eeg_equals_the_definition_away_from_a_boundary():
    import mne

    data = mne.io.read_raw_edf(EDF, verbose="ERROR").get_data()
    for ch0, s0 in ((0, 0), (60, 1000), (119, 1072)):
        x = data[ch0 : ch0 + 20, s0 : s0 + 2000]
        sure, want = decided(grey_values(x, 256))
        assert np.array_equal(spectrogram_image(x, 256)[sure], want)


def test_batches_and_threads_give_the_same_pixels():
    xs = windows(24)
    plan = plan_spectrogram(19, 1000, 256, "log")
    whole = spectrogram_images(xs, plan)
    alone = np.stack([spectrogram_images(x[None], plan)[0] for x in xs])
    order = np.random.default_rng(1).permutation(len(xs))
    shuffled = np.empty_like(whole)
    for k in range(0, len(xs), 7):
        part = order[k : k + 7]
        shuffled[part] = spectrogram_images(xs[part], plan)
    with thread_limit(1, blas=1):
        single = spectrogram_images(xs, plan)
    for other in (alone, shuffled, single):
        assert np.array_equal(whole, other)


def digest() -> str:
    """sha256 of the images of windows(24) as one batch and as two batches of 3."""
    xs = windows(24)
    plan = plan_spectrogram(19, 1000, 256, "log")
    h = hashlib.sha256(spectrogram_images(xs, plan).tobytes())
    for k in (1, 5):
        h.update(spectrogram_images(xs[k : k + 3], plan).tobytes())
    return h.hexdigest()


_CHILD = "import sys; sys.path.insert(0, {tests!r}); from test_pixel_determinism import digest; print(digest())"


def _python(code: str, env: dict) -> str:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=True).stdout.strip()


def _openblas() -> bool:
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return "openblas" in str(config.get("name", "")).lower()


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or not _openblas(),
                    reason="OpenBLAS core types are x86-64 names")
def test_openblas_core_types_give_the_same_pixels():
    """Kernels that round float32 products differently (each is checked to) give one image."""
    digests, products = {}, {}
    probe = ("import numpy as np, hashlib; r = np.random.default_rng(0); "
             "a = r.standard_normal((300, 255)).astype(np.float32); "
             "b = r.standard_normal((255, 2000)).astype(np.float32); "
             "print(hashlib.sha256((a @ b).tobytes()).hexdigest())")
    for core in ("Prescott", "Nehalem", "Sandybridge", "Haswell"):
        # the machine's own OPENBLAS_* settings are dropped: with OPENBLAS_L2_SIZE set, the Prescott
        # kernel hangs (seen with OpenBLAS 0.3.31); L2 is set back for Haswell, as CI's environment has it
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENBLAS_")}
        env.update(OPENBLAS_CORETYPE=core, PYTHONPATH=str(ROOT))
        if core == "Haswell":  # the environment where a pixel used to differ
            env["OPENBLAS_L2_SIZE"] = "524288"
        products[core] = _python(probe, env)
        digests[core] = _python(_CHILD.format(tests=str(ROOT / "tests")), env)
    assert len(set(products.values())) >= 3, products  # the kernels do differ
    assert len(set(digests.values())) == 1, digests
    assert digest() in digests.values()
