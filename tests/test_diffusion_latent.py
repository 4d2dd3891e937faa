"""The latent-unet kind and `sd diffusion train-vae`: an AutoencoderKL trained on the spectrograms,
then a UNet2DConditionModel in its latent space that trains, resumes bit-exactly, generates, and
loads as a diffusers pipeline. Tiny models on 16×16 images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_diffusion import one_line_error, sd, train, write_cfg, write_processed  # noqa: E402
from test_diffusion_kinds import with_model  # noqa: E402

LATENT = {"kind": "latent-unet", "vae": "vae", "block_out_channels": [16, 32], "norm_num_groups": 8,
          "vae_channels": [8, 16], "latent_channels": 2, "vae_steps": 40, "vae_lr": 3e-3}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


@pytest.fixture(scope="module")
def vae_work(tmp_path_factory) -> Path:
    """A data set and an experiment folder whose autoencoder `sd diffusion train-vae` trained."""
    work = tmp_path_factory.mktemp("latent")
    data = write_processed(work / "parkinsons")
    cfg = with_model(write_cfg(work / "cfg.toml", data, work / "run", conditions=("health", "age")), LATENT)
    res = sd("diffusion", "train-vae", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "grey levels mean absolute" in res.stdout
    return work


def test_train_vae_reports_reconstruction_error_in_grey_levels(vae_work):
    from diffusers import AutoencoderKL

    from sd_core.diffusion.vae import reconstruction_error

    report = json.loads((vae_work / "vae" / "train-vae.json").read_text())
    assert report["steps"] == 40 and report["latent_shape"] == [2, 8, 8]
    assert report["eval_split"] == "train"  # the tiny data set has no val split
    vae = AutoencoderKL.from_pretrained(str(vae_work / "vae"), use_safetensors=True)
    assert vae.config.scaling_factor == pytest.approx(report["scaling_factor"]) and vae.config.scaling_factor > 0
    # the trained autoencoder reconstructs far better than an untrained one of the same shape
    from sd_core.data.images import ProcessedImages
    from sd_core.data.select import read_rows as select_rows
    from sd_core.data.sources import Source

    rows = select_rows([Source(vae_work / "parkinsons", "parkinsons")], "train")
    x = ProcessedImages(rows, [], 16).__getitems__(list(range(24)))["image"]
    torch.manual_seed(0)
    from sd_core.diffusion.vae import build_vae

    raw = build_vae({"vae_channels": [8, 16], "latent_channels": 2, "norm_num_groups": 8}, 16).eval()
    trained, untrained = reconstruction_error(vae.eval(), x), reconstruction_error(raw, x)
    print(f"reconstruction error: {trained} trained, {untrained} untrained")
    assert trained["mae_grey"] == pytest.approx(report["mae_grey"], rel=1e-4)
    assert trained["mae_grey"] < 0.5 * untrained["mae_grey"]

    # sd replaces the folder only with --overwrite, and never one it did not write
    cfg = vae_work / "cfg.toml"
    assert "--overwrite" in one_line_error(sd("diffusion", "train-vae", str(cfg)))
    (vae_work / "vae" / "notes.txt").write_text("mine")
    assert "notes.txt" in one_line_error(sd("diffusion", "train-vae", str(cfg), "--overwrite"))
    (vae_work / "vae" / "notes.txt").unlink()


def test_latent_unet_trains_resumes_bit_exactly_generates_and_loads_as_a_pipeline(vae_work, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.pipeline import SpectrogramPipeline
    from sd_core.diffusion.train import StopTraining

    monkeypatch.chdir(tmp_path)
    kw = {"steps": 8, "checkpoint_steps": 4, "ema_decay": 0.9, "lr": 1e-3, "sample_solver_steps": 2,
          "samples_per_condition": 1}
    cfgs = {}
    for name in ("full", "part"):
        cfgs[name] = with_model(write_cfg(vae_work / f"{name}.toml", vae_work / "parkinsons", tmp_path / name,
                                          conditions=("health", "age"), **kw), LATENT)
    train(cfgs["full"])

    def interrupt(step, loss):
        if step == 6:
            raise StopTraining

    with pytest.raises(StopTraining):
        train(cfgs["part"], on_step=interrupt)
    assert train(cfgs["part"], resume=True)["start"] == 4
    h = [json.loads((tmp_path / n / "history.json").read_text()) for n in ("full", "part")]
    assert [x["loss"] for x in h[0]] == [x["loss"] for x in h[1]]
    for sub in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                "conditioning/conditioning.safetensors"):
        a, b = load_file(str(tmp_path / "full" / sub)), load_file(str(tmp_path / "part" / sub))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    # the frozen autoencoder is the one train-vae wrote, unchanged
    a, b = load_file(str(tmp_path / "full" / "vae/diffusion_pytorch_model.safetensors")), \
        load_file(str(vae_work / "vae" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    unet = json.loads((tmp_path / "full" / "unet" / "config.json").read_text())
    assert unet["_class_name"] == "UNet2DConditionModel" and unet["in_channels"] == 2 and unet["sample_size"] == 8

    res = sd("generate", str(tmp_path / "full"), "--n", "2", "--condition", "health=PD,age=70", "--steps", "3",
             "--seed", "4", "--out", str(tmp_path / "gen"))
    assert res.returncode == 0, res.stderr
    from PIL import Image

    rows = read_rows(tmp_path / "gen" / "train-metadata.csv")
    expected = np.stack([np.asarray(Image.open(tmp_path / "gen" / r["file_name"])) for r in rows])
    assert expected.shape == (2, 16, 16)
    index = json.loads((tmp_path / "full" / "model_index.json").read_text())
    assert index["vae"] == ["diffusers", "AutoencoderKL"] and index["unet"] == ["diffusers", "UNet2DConditionModel"]
    pipe = SpectrogramPipeline.from_pretrained(str(tmp_path / "full"))
    got = pipe({"health": "PD", "age": 70}, num_images=2, num_inference_steps=3, seed=4, output_type="np").images
    assert np.array_equal(got, expected)
    again = generate_dataset(tmp_path / "full", tmp_path / "gen2", n=2, conditions=[{"health": "PD", "age": "70"}],
                             steps=3, seed=4)
    assert again["images"] == 2


def test_latent_errors_are_one_line(vae_work, tmp_path):
    cfg = with_model(write_cfg(tmp_path / "novae.toml", vae_work / "parkinsons", tmp_path / "r"),
                     {**LATENT, "vae": str(tmp_path / "missing")})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "holds no AutoencoderKL" in msg and "sd diffusion train-vae" in msg and "novae.toml" in msg
    cfg = write_cfg(tmp_path / "unet.toml", vae_work / "parkinsons", tmp_path / "r")
    assert 'trains the autoencoder of kind = "latent-unet"' in one_line_error(sd("diffusion", "train-vae", str(cfg)))
    cfg = with_model(write_cfg(tmp_path / "g.toml", vae_work / "parkinsons", tmp_path / "r"),
                     {**LATENT, "vae_channels": [8, 12]})
    assert "norm_num_groups = 8 does not divide the channel counts [12]" in one_line_error(
        sd("diffusion", "train-vae", str(cfg)))
