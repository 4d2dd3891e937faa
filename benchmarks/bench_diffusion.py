"""Benchmark: diffusion training speed, and sampling cost of 25 DPM-Solver++ steps vs 1000 DDPM steps.

    python benchmarks/bench_diffusion.py [--size 32] [--batch 16] [--train-steps 20]
                                         [--images 4] [--device cpu|cuda] [--threads N]

Trains the UNet of the ``sd demo`` configuration (block_out_channels 32/64, one label condition)
on random images for a few steps and reports optimizer steps per second; then samples with
classifier-free guidance (conditional and null labels in one batch) and reports seconds per
generated image for each solver and their ratio. Weights are random: this measures cost, not
quality.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32, help="image size")
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64], help="block_out_channels")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--images", type=int, default=4, help="images per sampling run")
    ap.add_argument("--ddpm-steps", type=int, default=1000)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args(argv)

    import torch
    from diffusers import DDPMScheduler

    from sd_core.diffusion.conditioning import Conditioning
    from sd_core.diffusion.model import Denoiser, build_unet, time_embed_dim
    from sd_core.diffusion.sampling import make_scheduler, sample
    from sd_core.diffusion.train import diffusion_loss

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device available")
        return 1
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{torch.get_num_threads()} torch threads, device {dev}"
          + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""))
    torch.manual_seed(0)
    unet = build_unet({"block_out_channels": args.channels, "layers_per_block": 1, "attention": False,
                       "norm_num_groups": 8}, args.size)
    model = Denoiser(unet, Conditioning({"health": 2}, [], time_embed_dim(unet))).to(dev)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"UNet {args.channels} at {args.size}x{args.size}, {n_params:,} parameters, batch {args.batch}")

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x0 = torch.rand(args.batch, 1, args.size, args.size, device=dev) * 2 - 1
    labels = {"health": torch.randint(0, 2, (args.batch,), device=dev)}
    gen = torch.Generator().manual_seed(0)

    def train_step():
        loss = diffusion_loss(model, sched, x0, labels, None, gen, "epsilon", 5.0)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):  # warm-up
        train_step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.train_steps):
        train_step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    print(f"training   {args.train_steps / dt:8.2f} steps/s   ({args.batch * args.train_steps / dt:7.1f} images/s)")

    model.eval()
    lab = {"health": torch.arange(args.images) % 2}
    timings = {}
    for kind, steps in (("dpm", 25), ("ddpm", args.ddpm_steps)):
        s = make_scheduler(kind, sched.config)
        sample(model, s, lab, steps=2, guidance=2.0, device=dev)  # warm-up
        t0 = time.perf_counter()
        sample(model, s, lab, steps=steps, guidance=2.0, device=dev, batch_size=args.images)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        timings[kind] = (time.perf_counter() - t0) / args.images
        print(f"sampling   {kind:4s} {steps:5d} steps  {timings[kind]:8.3f} s/image  "
              f"(guidance 2: {2 * args.images} UNet rows per step)")
    print(f"DPM-Solver++ 25 steps is {timings['ddpm'] / timings['dpm']:.1f}x faster than DDPM "
          f"{args.ddpm_steps} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
