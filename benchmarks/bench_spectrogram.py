"""Benchmark: the spectrogram engine against the original per-channel dense-DFT computation.

    python benchmarks/bench_spectrogram.py [--windows 64] [--repeats 3] [--resolutions 256 512]

Both compute log-bin spectrogram images of the same random windows (20 channels x 2000
samples).  The reference is the way the original project did it: for each window and each
channel, the frames (F, n) times a dense complex128 DFT matrix (n, R) built once, then dB,
min-max scaling and placement.  The script checks that the images agree to within one grey
level and prints windows per second and the speed-up for each resolution.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sd_core.spectrogram import plan_spectrogram, spectrogram_images
from sd_core.spectrogram.basis import log_basis
from sd_core.spectrogram.threads import blas_threads, n_threads


class DenseReference:
    """Per-channel spectrogram with a cached dense complex128 DFT matrix (the original way)."""

    def __init__(self, n_channels: int, nsamps: int, resolution: int, hop_multiple: int = 4):
        self.plan = plan_spectrogram(n_channels, nsamps, resolution, "log", hop_multiple=hop_multiple)
        R = resolution
        n = 2 * R - 1
        m = np.arange(n)[:, None]
        f = 10.0 ** np.linspace(np.log10(0.001), np.log10(0.5), R - 1)
        w = np.hanning(n)[:, None]
        self.matrix = np.empty((n, R), dtype=np.complex128)
        self.matrix[:, :1] = w  # DC column, replaced by the whole-window DC below
        self.matrix[:, 1:] = w * np.exp(-2j * np.pi * m * f[None, :]) * (2.0 / math.sqrt(n))

    def image(self, x: np.ndarray) -> np.ndarray:
        p = self.plan
        C, ns, R, n, hop, F = p.n_channels, p.nsamps, p.resolution, p.window_length, p.hop, p.n_frames
        img = np.zeros((R, R), dtype=np.uint8)
        x0 = p.x_offset
        for ch in range(C):
            xc = np.asarray(x[ch], dtype=np.float64)
            padded = np.concatenate([xc - xc.mean(), np.zeros(max(0, n - ns % hop))])
            frames = sliding_window_view(padded, n)[::hop][:F]  # (F, n)
            spec = np.abs(frames @ self.matrix)  # (F, R)
            spec[:, 0] = abs(xc.sum()) / math.sqrt(ns)
            db = np.maximum(20.0 * np.log10(spec + 1e-9), -100.0)
            lo, hi = db.min(), db.max()
            u = np.zeros_like(db) if hi == lo else (db - lo) / (hi - lo) * 255.0  # truncated
            img[:, x0 + ch * F : x0 + (ch + 1) * F] = u.T[::-1].astype(np.uint8)
        return img

    def images(self, xs: np.ndarray) -> np.ndarray:
        return np.stack([self.image(x) for x in xs])


def best_time(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` runs after a warm-up run (whose result is returned)."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=64)
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--nsamps", type=int, default=2000)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of the engine (best counts)")
    ap.add_argument("--ref-repeats", type=int, default=3, help="timed runs of the reference")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs; "
        f"engine threads {n_threads()}, BLAS threads (threadpoolctl) "
        f"{blas_threads() or 'not found'}"
    )
    rng = np.random.default_rng(args.seed)
    xs = rng.standard_normal((args.windows, args.channels, args.nsamps))
    xs *= rng.uniform(0.5, 50.0, size=(args.windows, args.channels, 1))
    xs += rng.normal(0.0, 10.0, size=(args.windows, args.channels, 1))
    print(f"{args.windows} windows x {args.channels} channels x {args.nsamps} samples, log bins")

    ok = True
    for R in args.resolutions:
        plan = plan_spectrogram(args.channels, args.nsamps, R)
        t0 = time.perf_counter()
        log_basis(R)
        t_basis = time.perf_counter() - t0
        ref = DenseReference(args.channels, args.nsamps, R)
        t_eng, got = best_time(lambda plan=plan: spectrogram_images(xs, plan), args.repeats)
        t_ref, want = best_time(lambda ref=ref: ref.images(xs), args.ref_repeats)
        diff = int(np.abs(got.astype(np.int16) - want.astype(np.int16)).max())
        n_diff = int(np.count_nonzero(got != want))
        ok &= diff <= 1
        print(
            f"R={R}: hop {plan.hop}, {plan.n_frames} frames/channel, width {plan.width}; "
            f"basis build (once) {t_basis * 1e3:.0f} ms"
        )
        print(f"  engine     {args.windows / t_eng:9.1f} windows/s  ({t_eng * 1e3:8.1f} ms)")
        print(f"  reference  {args.windows / t_ref:9.1f} windows/s  ({t_ref * 1e3:8.1f} ms)")
        print(
            f"  speed-up   {t_ref / t_eng:9.1f}x   max |engine - reference| = {diff} grey level(s), "
            f"{n_diff} of {got.size} pixels differ"
        )
    print("outputs agree within 1 grey level" if ok else "OUTPUTS DIFFER BY MORE THAN 1 GREY LEVEL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
