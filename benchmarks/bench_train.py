"""Benchmark: `sd train`'s input pipeline plus model against the same steps on tensors in memory.

    python benchmarks/bench_train.py [--images 640] [--size 128] [--batch 32] [--steps 40]
                                     [--backbone cnn_light] [--repeats 2]

A processed data set of PNGs is written in the processed layout. Then, with the same model,
optimizer and batch size:

- **sd train**: the training loop of ``sd train`` itself (``sd_core.training.loop.train``,
  evaluation off), timed step by step through its ``on_step`` hook;
- **in memory**: a bare loop over a few batches that are already float tensors in memory;
- **sd train, no cache**: the loop with the image cache off (every step decodes its PNGs).

It prints the median step time of each and the ratios against the in-memory loop; the target
for ``sd train`` is a ratio of at most 1.15.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

from layout_data import write_processed  # noqa: E402
from sd_core.config import load_config  # noqa: E402
from sd_core.data.images import ProcessedImages  # noqa: E402
from sd_core.data.select import read_rows  # noqa: E402
from sd_core.data.sources import Source  # noqa: E402
from sd_core.data.tasks import resolve_tasks  # noqa: E402
from sd_core.plugins import get_registry  # noqa: E402
from sd_core.training.losses import task_losses, total_loss  # noqa: E402
from sd_core.training.loop import make_optimizer, train  # noqa: E402
from sd_core.training.model import build_model  # noqa: E402
from sd_core.training.settings import load_train_experiment  # noqa: E402


def write_data(root: Path, images: int, size: int) -> None:
    subjects = {f"Subject{i:02d}": {"split": "train", "gender": "FM"[i % 2], "health": "H", "age": "30",
                                    "count_quality": "1"} for i in range(8)}
    per = images // len(subjects)
    write_processed(root / "math", "math", subjects, [{"doing_math": str(i % 2)} for i in range(per)],
                    "doing_math", {"0": size // 6, "1": size // 2}, size, columns=("doing_math", "count_quality"))


def experiment(root: Path, args, cache_mb: int) -> Path:
    cfg = root / f"bench-{cache_mb}.toml"
    cfg.write_text(f"""
[data]
datasets = ["math"]
tasks = ["math_activity", "gender"]
paths = {{ math = "{root / 'math'}" }}
val_split = ""
test_split = ""
batch_size = {args.batch}
cache_mb = {cache_mb}
[model]
backbone = "{args.backbone}"
[training]
max_steps = {args.steps}
eval_strategy = "none"
""")
    return cfg


def time_sd_train(root: Path, args, cache_mb: int) -> list[float]:
    reg = get_registry()
    exp = load_train_experiment(experiment(root, args, cache_mb), reg)
    stamps: list[float] = []
    train(exp, reg, load_config(), root / f"run-{cache_mb}-{time.monotonic_ns()}",
          on_step=lambda step, loss: stamps.append(time.perf_counter()))
    return [b - a for a, b in zip(stamps, stamps[1:])]


def time_in_memory(root: Path, args) -> list[float]:
    """The same model and optimizer on batches that are float tensors already."""
    reg = get_registry()
    exp = load_train_experiment(experiment(root, args, 4096), reg)
    rows = read_rows([Source(root / "math", "math")], "train")
    tasks = resolve_tasks(["math_activity", "gender"], ["math"], reg, rows)
    data = ProcessedImages(rows, tasks)
    torch.manual_seed(0)
    model = build_model(reg, args.backbone, exp["model"]["options"], tasks, exp["model"]["embedding_dim"],
                        exp["model"]["dropout"], data.size)
    opt = make_optimizer(model.parameters(), exp["training"])
    n = len(data)
    pool = []  # a few batches made up front, reused: the data costs nothing here
    for s in range(4):
        idx = [(s * args.batch + i) % n for i in range(args.batch)]
        b = data.__getitems__(idx)
        pool.append((b["image"].clone(), {k: v.clone() for k, v in b["targets"].items()}))
    model.train()
    times = []
    for s in range(args.steps):
        images, targets = pool[s % len(pool)]
        t0 = time.perf_counter()
        loss = total_loss(task_losses(model(images), targets), {})
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=640)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--backbone", default="cnn_light")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} cpus, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{args.images} PNGs of {args.size}×{args.size}, batch {args.batch}, {args.steps} steps, "
          f"backbone {args.backbone}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_data(root, args.images, args.size)
        # interleaved repeats, best median of each: a shared machine drifts between runs
        refs, piped, uncached = [], [], []
        for _ in range(args.repeats):
            refs.append(statistics.median(time_in_memory(root, args)))
            piped.append(statistics.median(time_sd_train(root, args, 4096)))
            uncached.append(statistics.median(time_sd_train(root, args, 0)))
    ref, piped, uncached = min(refs), min(piped), min(uncached)
    print(f"{'loop':<22}{'median step (ms)':>18}{'ratio':>8}")
    print(f"{'in memory':<22}{ref * 1e3:>18.1f}{1.0:>8.2f}")
    print(f"{'sd train':<22}{piped * 1e3:>18.1f}{piped / ref:>8.2f}   (target ≤ 1.15)")
    print(f"{'sd train, no cache':<22}{uncached * 1e3:>18.1f}{uncached / ref:>8.2f}")


if __name__ == "__main__":
    main()
