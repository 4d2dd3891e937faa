"""Benchmark: does conditional diffusion make useful data? (issue 14)

    python benchmarks/bench_generation.py [--kind unet] [--size 64] [--steps 800] [--per-class 60]
                                          [--workdir DIR] [--threads 2] [--pretrained-pipeline DIR]

On the Parkinson's demo data (written in its native BIDS/EEGLAB format and preprocessed with
the demo's parameters), every comparison at ``--size`` (real images resized to it):

1. trains the conditional model (conditioned on health) of ``--kind`` with its configuration
   below (``latent-unet``: first its autoencoder, as ``sd diffusion train-vae`` does);
2. generates a balanced set with 25 DPM-Solver++ steps, and the same labels with 250 ancestral
   DDPM steps;
3. runs ``sd evaluate`` on each: conditional accuracy of a classifier trained on real images,
   TSTR (train on synthetic, test on real subjects; 3 seeds), FID/KID in that classifier's
   embedding beside the real-vs-real floor;
4. prints the figures, the sampler comparison and the targets.

Targets (CPU, 2 cores, the whole script under 15 minutes): conditional balanced accuracy
≥ 0.85; TSTR balanced accuracy ≥ 0.80; 25 DPM-Solver++ steps within 5 points of 250 DDPM steps
on conditional accuracy while at least 8× faster. With a GPU it also runs at 128 and 256.

Kinds: ``unet`` (default), ``dit`` and ``latent-unet`` train from scratch. ``stable-diffusion``
fine-tunes a local pretrained pipeline, so it needs ``--pretrained-pipeline DIR`` (a folder
written by ``StableDiffusionPipeline.save_pretrained``; nothing is downloaded, and none ships
with sd, so it does not run offline without one).
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

#: what this benchmark found to work on a CPU (see docs/diffusion.md)
MODEL = {"block_out_channels": [32, 64, 128], "layers_per_block": 1, "attention": False,
         "norm_num_groups": 8, "patch_size": 2, "cond_dropout": 0.1}
TRAINING = {"lr": 1e-3, "warmup_steps": 50, "ema_decay": 0.995, "snr_gamma": 5.0,
            "prediction_type": "epsilon", "beta_schedule": "squaredcos_cap_v2", "checkpoint_steps": 0,
            "sample_steps": 0, "sample_solver_steps": 25, "guidance": 2.0}
#: the other kinds, sized for the same CPU budget (docs/diffusion.md, "Model kinds")
MODELS = {"unet": MODEL,
          "dit": {"patch_size": 4, "num_layers": 4, "num_attention_heads": 4, "attention_head_dim": 32,
                  "cond_dropout": 0.1},
          "latent-unet": {"block_out_channels": [32, 64], "layers_per_block": 1, "norm_num_groups": 8,
                          "vae_channels": [16, 32, 32], "latent_channels": 4, "vae_steps": 300, "cond_dropout": 0.1},
          "stable-diffusion": {"cond_dropout": 0.1}}
#: what differs from TRAINING per kind
KIND_TRAINING = {"dit": {"lr": 5e-4}}


def experiment(processed: Path, run: Path, size: int, steps: int, batch: int, seed: int, kind: str = "unet",
               extra: dict | None = None) -> str:
    from sd_core.config import toml_value

    options = MODELS[kind] if kind == "unet" else {"kind": kind, **MODELS[kind], **(extra or {})}
    model = "\n".join(f"{k} = {toml_value(v)}" for k, v in options.items())
    training = "\n".join(f"{k} = {toml_value(v)}" for k, v in {**TRAINING, **KIND_TRAINING.get(kind, {})}.items())
    return (f"[data]\ndatasets = [\"parkinsons\"]\nconditions = [\"health\"]\n"
            f"paths = {{ parkinsons = {toml_value(str(processed))} }}\nimage_size = {size}\n"
            f"batch_size = {batch}\n\n[model]\n{model}\n\n[training]\nsteps = {steps}\nseed = {seed}\n"
            f"{training}\noutput_dir = {toml_value(str(run))}\n")


def data(work: Path, seed: int) -> Path:
    from sd_core.cli.demo import DEMO_PREPROCESS
    from sd_core.plugins import get_registry
    from sd_core.preprocess import preprocess_dataset

    plugin = get_registry().dataset("parkinsons")
    raw, out = work / "raw", work / "processed" / "parkinsons"
    if not (out / "metadata.csv").is_file():
        plugin.write_demo(raw, seed=seed)
        options = {k: o.default for k, o in dict(plugin.options).items()}
        preprocess_dataset(plugin, raw, out, DEMO_PREPROCESS, list(plugin.channels), options, workers=1)
    return out


def one_size(work: Path, processed: Path, size: int, steps: int, per_class: int, ddpm_per_class: int,
             seed: int, device: str, kind: str = "unet", pipeline: Path | None = None) -> dict:
    from sd_core.config import load_config
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.train import train_diffusion
    from sd_core.evaluate.run import Options, evaluate

    tag = f"{size}" if kind == "unet" else f"{kind}-{size}"
    run = work / f"run-{tag}"
    cfg = work / f"diffusion-{tag}.toml"
    extra = {"vae": str(work / f"vae-{size}")} if kind == "latent-unet" else \
        {"pretrained_pipeline": str(pipeline)} if kind == "stable-diffusion" else {}
    cfg.write_text(experiment(processed, run, size, steps, 16, seed, kind, extra))
    vae = {}
    if kind == "latent-unet":
        from sd_core.diffusion.vae import train_vae

        t0 = time.perf_counter()
        v = train_vae(load_diffusion_experiment(cfg), load_config(None), overwrite=True)
        vae = {"vae_s": time.perf_counter() - t0, "vae_steps": v["steps"], "vae_mae": v["mae_grey"],
               "vae_rmse": v["rmse_grey"], "latent_shape": v["latent_shape"]}
    t0 = time.perf_counter()
    res = train_diffusion(load_diffusion_experiment(cfg), load_config(None), out=run)
    train_s = time.perf_counter() - t0
    out = {"size": size, "steps": steps, "train_s": train_s, "final_loss": res["final_loss"], "kind": kind, **vae}
    for name, sched, n_steps, n in (("dpm25", "dpm", 25, per_class), ("ddpm250", "ddpm", 250, ddpm_per_class)):
        gen = generate_dataset(run, work / f"gen-{tag}-{name}", n, balanced=True, steps=n_steps,
                               scheduler=sched, guidance=TRAINING["guidance"], seed=seed, overwrite=True,
                               device=device)
        out[f"{name}_s_per_image"] = gen["seconds"] / gen["images"]
    t0 = time.perf_counter()
    ev = evaluate(processed, work / f"gen-{tag}-dpm25", work / f"eval-{tag}-dpm25",
                  Options(seed=seed, image_size=size))["result"]
    ev_ddpm = evaluate(processed, work / f"gen-{tag}-ddpm250", work / f"eval-{tag}-ddpm250",
                       Options(seed=seed, image_size=size, skip_utility=True,
                               classifier=work / f"eval-{tag}-dpm25" / "classifier"))["result"]
    out["evaluate_s"] = time.perf_counter() - t0
    acc = lambda e: e["conditional_accuracy"]["health"]["balanced_accuracy"]  # noqa: E731
    pooled = ev["features"]["classifier"]["pooled"]
    tstr = ev["tstr"]["balanced_accuracy"]["health"]
    out.update(cond_dpm=acc(ev), cond_ddpm=acc(ev_ddpm), tstr=tstr["mean"], tstr_std=tstr["std"],
               trtr=ev["trtr"]["balanced_accuracy"]["health"]["mean"],
               fid=pooled["generated"]["fid"], fid_floor=pooled["real_vs_real"]["fid"],
               kid=pooled["generated"]["kid"], kid_floor=pooled["real_vs_real"]["kid"])
    return out


def report(r: dict) -> list[bool]:
    speed = r["ddpm250_s_per_image"] / r["dpm25_s_per_image"]
    kind = "" if r["kind"] == "unet" else f" {r['kind']}"
    print(f"\n== {r['size']}×{r['size']}{kind}: {r['steps']} training steps in {r['train_s']:.0f} s "
          f"(final loss {r['final_loss']:.4f}); evaluation {r['evaluate_s']:.0f} s")
    if "vae_s" in r:
        print(f"autoencoder: {r['vae_steps']} steps in {r['vae_s']:.0f} s, latents "
              f"{'×'.join(map(str, r['latent_shape']))}, reconstruction error {r['vae_mae']:.2f} grey levels "
              f"mean absolute ({r['vae_rmse']:.2f} RMS)")
    print(f"conditional balanced accuracy (real classifier on generated): DPM-Solver++ 25 "
          f"{r['cond_dpm']:.3f}, DDPM 250 {r['cond_ddpm']:.3f}")
    print(f"TSTR balanced accuracy on real test subjects: {r['tstr']:.3f} ± {r['tstr_std']:.3f} "
          f"(real-trained: {r['trtr']:.3f})")
    print(f"classifier features: FID {r['fid']:.3f} (real vs real {r['fid_floor']:.3f}), "
          f"KID {r['kid']:.4f} (real vs real {r['kid_floor']:.4f})")
    print(f"sampling: DPM-Solver++ 25 {r['dpm25_s_per_image']:.3f} s/image, DDPM 250 "
          f"{r['ddpm250_s_per_image']:.3f} s/image: {speed:.1f}× faster")
    checks = [("conditional accuracy ≥ 0.85", r["cond_dpm"] >= 0.85),
              ("TSTR ≥ 0.80", r["tstr"] >= 0.80),
              ("DPM 25 within 5 points of DDPM 250", abs(r["cond_dpm"] - r["cond_ddpm"]) <= 0.05 + 1e-9),
              ("DPM 25 ≥ 8× faster than DDPM 250", speed >= 8)]
    for name, ok in checks:
        print(f"  {'met' if ok else 'NOT MET'}: {name}")
    return [ok for _, ok in checks]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", default="unet", choices=list(MODELS), help="model kind ([model] kind)")
    ap.add_argument("--pretrained-pipeline", type=Path, default=None,
                    help="--kind stable-diffusion: local StableDiffusionPipeline folder (required)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=800, help="training steps")
    ap.add_argument("--per-class", type=int, default=60, help="generated images per class (DPM-Solver++)")
    ap.add_argument("--ddpm-per-class", type=int, default=20,
                    help="images per class for the DDPM comparison (250 steps each: 10× the cost)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.kind == "stable-diffusion" and args.pretrained_pipeline is None:
        ap.error("--kind stable-diffusion needs --pretrained-pipeline DIR (a local folder written by "
                 "StableDiffusionPipeline.save_pretrained; nothing is downloaded)")

    import torch

    torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
          f"{args.threads} torch threads, device {device}" + ("" if args.kind == "unet" else f", kind {args.kind}"))
    t_all = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-generation-"))
    work.mkdir(parents=True, exist_ok=True)
    processed = data(work, args.seed)
    sizes = [args.size] + ([128, 256] if cuda and args.size == 64 else [])
    results = [one_size(work, processed, s, args.steps, args.per_class, args.ddpm_per_class, args.seed, device,
                        args.kind, args.pretrained_pipeline and args.pretrained_pipeline.resolve())
               for s in sizes]
    met = [report(r) for r in results]
    total = time.perf_counter() - t_all
    print(f"\nwhole benchmark: {total / 60:.1f} min (target on CPU: under 15); work folder {work}")
    print("targets met" if all(all(m) for m in met) and (cuda or total <= 900) else "targets NOT all met")


if __name__ == "__main__":
    main()
