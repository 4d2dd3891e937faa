"""Benchmark: `sd evaluate` of 2,000 generated against 2,000 real images at 128×128, without
the utility step.

    python benchmarks/bench_evaluate.py [--images 2000] [--size 128] [--channels 20] [--steps 150]

Writes a real set (2,000 train and 2,000 test images of 20 channel strips, with preprocess.json)
and a generated set of 2,000 images in the processed layout, then times:

- **whole**: ``sd evaluate --skip-utility`` as a user runs it: reading images, training the
  real classifier (``--steps`` steps), both feature spaces, every set metric pooled and per
  class with its real-vs-real floor, conditional accuracy, band statistics, memorisation and
  the report;
- **with --classifier**: the same with the classifier of the first run given (no training).

Target: the whole evaluation in under 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

from eval_data import PARAMS, generated_set, real_set  # noqa: E402
from sd_core.evaluate.report import write_outputs  # noqa: E402
from sd_core.evaluate.run import Options, evaluate  # noqa: E402

CHANNELS = ["Fp1", "Fp2", "F3", "F4", "Fz", "F7", "F8", "C3", "C4", "Cz", "P3", "P4", "Pz", "O1", "O2",
            "T7", "T8", "TP7", "TP8", "TP10"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--channels", type=int, default=20)
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    params = dict(PARAMS, resolution=args.size, channels=CHANNELS[:args.channels])
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        per_subject = args.images // 20
        real = real_set(root / "real", per_subject=per_subject, params=params,
                        subjects={"train": 10, "test": 10})
        gen = generated_set(root / "gen", per_class=args.images // 2, params=params)
        print(f"wrote {args.images} train + {args.images} test real and {args.images} generated images "
              f"at {args.size}×{args.size} in {time.perf_counter() - t0:.1f} s")
        times = {}
        t0 = time.perf_counter()
        ev = evaluate(real, gen, root / "out", Options(skip_utility=True, steps=args.steps))
        write_outputs(root / "out", ev)
        times["whole (trains the classifier)"] = time.perf_counter() - t0
        clf = Path(ev["result"]["classifier"]["run"])
        t0 = time.perf_counter()
        ev2 = evaluate(real, gen, root / "out2", Options(skip_utility=True, classifier=clf))
        write_outputs(root / "out2", ev2)
        times["with --classifier"] = time.perf_counter() - t0
        r = ev["result"]
        print(f"n: {r['n']}; fid classifier {r['fid']['classifier']['value']:.3f} "
              f"(floor {r['fid']['classifier']['real_vs_real']:.3f}), bandpower "
              f"{r['fid']['bandpower']['value']:.3f} (floor {r['fid']['bandpower']['real_vs_real']:.3f})")
        for name, s in times.items():
            print(f"{name:32s} {s:7.1f} s")
        for label, e in (("whole", ev), ("with --classifier", ev2)):
            parts = ", ".join(f"{k} {v:.1f} s" for k, v in e["seconds"].items())
            print(f"  {label}: {parts}")
        verdict = "OK" if times["whole (trains the classifier)"] < 120 else "SLOWER THAN TARGET"
        print(f"target: under 120 s for the whole evaluation: {verdict}")


if __name__ == "__main__":
    main()
