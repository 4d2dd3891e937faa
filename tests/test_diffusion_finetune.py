"""Fine-tuning a local pretrained Stable Diffusion pipeline ([model] kind = "stable-diffusion"):
a tiny pipeline built from configs (VAE, CLIP text encoder with a tokenizer made here, UNet;
nothing downloaded) is saved, fine-tuned for a few steps offline, resumed bit-exactly, and
sampled from free text with sd generate --prompt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, train_until

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from test_diffusion import ONE_THREAD, one_line_error, run_sd, train, write_cfg, write_processed  # noqa: E402
from test_diffusion_kinds import with_model  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


def write_tokenizer(folder: Path) -> None:
    """A CLIP tokenizer whose vocabulary is the byte alphabet (every word splits into characters)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    transformers.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=24).save_pretrained(str(folder))


def tiny_pipeline(folder: Path) -> Path:
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    write_tokenizer(folder / "tok")
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(folder / "tok"))
    torch.manual_seed(0)
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=24, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                        norm_num_groups=8, layers_per_block=1, sample_size=16)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, norm_num_groups=8, cross_attention_dim=16,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=2)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDPMScheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder / "pipeline"))
    return folder / "pipeline"


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    return tiny_pipeline(tmp_path_factory.mktemp("sd15"))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_processed(tmp_path_factory.mktemp("data") / "parkinsons")


def test_fine_tune_resumes_bit_exactly_and_generates_from_a_prompt(pretrained, data, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.model import load_run

    monkeypatch.chdir(tmp_path)
    kw = {"steps": 6, "checkpoint_steps": 3, "ema_decay": 0.9, "lr": 1e-3, "sample_solver_steps": 2,
          "samples_per_condition": 1}
    model = {"kind": "stable-diffusion", "pretrained_pipeline": str(pretrained), "cond_dropout": 0.2}
    full = with_model(write_cfg(tmp_path / "full.toml", data, tmp_path / "full", **kw), model)
    part = with_model(write_cfg(tmp_path / "part.toml", data, tmp_path / "part", **kw), model)
    train(full)

    train_until(train, part, 4)
    assert train(part, resume=True)["start"] == 3
    h = [json.loads((tmp_path / n / "history.json").read_text()) for n in ("full", "part")]
    assert [x["loss"] for x in h[0]] == [x["loss"] for x in h[1]] and len(h[0]) == 6
    for sub in ("unet/diffusion_pytorch_model.safetensors", "conditioning/conditioning.safetensors"):
        a, b = load_file(str(tmp_path / "full" / sub)), load_file(str(tmp_path / "part" / sub))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), sub
    # the UNet was fine-tuned; the VAE and the text encoder are the pretrained ones, unchanged
    tuned = load_file(str(tmp_path / "full" / "unet/diffusion_pytorch_model.safetensors"))
    start = load_file(str(pretrained / "unet/diffusion_pytorch_model.safetensors"))
    assert tuned.keys() == start.keys() and any(not torch.equal(tuned[k], start[k]) for k in start)
    for part_name in ("vae", "text_encoder"):
        a = load_file(str(tmp_path / "full" / part_name / f"{'diffusion_pytorch_' if part_name == 'vae' else ''}model.safetensors"))
        b = load_file(str(pretrained / part_name / f"{'diffusion_pytorch_' if part_name == 'vae' else ''}model.safetensors"))
        assert all(torch.equal(a[k], b[k]) for k in b), part_name
    assert (tmp_path / "full" / "tokenizer" / "tokenizer_config.json").is_file()
    index = json.loads((tmp_path / "full" / "model_index.json").read_text())
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"] and index["tokenizer"][1] == "CLIPTokenizer"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"] and index["vae"] == ["diffusers", "AutoencoderKL"]
    run = load_run(tmp_path / "full")
    assert run.kind == "stable-diffusion" and run.model.caption_encoder is not None and run.text is None

    prompt = "an EEG spectrogram of a 70 year old male subject with Parkinson's disease"
    res = run_sd("generate", str(tmp_path / "full"), "--prompt", prompt, "--n", "2", "--steps", "3", "--seed", "2",
                 "--out", str(tmp_path / "gen"), env=ONE_THREAD)
    assert res.returncode == 0, res.stderr
    rows = read_rows(tmp_path / "gen" / "train-metadata.csv")
    assert [r["caption"] for r in rows] == [prompt, prompt] and {r["health"] for r in rows} == {""}
    from PIL import Image

    first = np.stack([np.asarray(Image.open(tmp_path / "gen" / r["file_name"])) for r in rows])
    assert first.shape == (2, 16, 16)
    # the prompt matters: the same seed with another prompt gives other images; the same prompt the same
    other = generate_dataset(tmp_path / "full", tmp_path / "g2", n=2, steps=3, seed=2, prompt="a healthy subject")
    again = generate_dataset(tmp_path / "full", tmp_path / "g3", n=2, steps=3, seed=2, prompt=prompt)
    img = lambda out, r: np.asarray(Image.open(out / r["file_name"]))  # noqa: E731
    assert np.array_equal(np.stack([img(tmp_path / "g3", r) for r in again["rows"]]), first)
    assert not np.array_equal(np.stack([img(tmp_path / "g2", r) for r in other["rows"]]), first)
    gen = json.loads((tmp_path / "gen" / "generation.json").read_text())
    assert gen["prompt"] == prompt

    # the run folder is a diffusers pipeline that samples the same images from the same prompt and seed
    from sd_core.diffusion.pipeline import SpectrogramPipeline

    pipe = SpectrogramPipeline.from_pretrained(str(tmp_path / "full"))
    got = pipe(prompt=prompt, num_images=2, num_inference_steps=3, seed=2, output_type="np").images
    assert np.array_equal(got, first)


def test_fine_tune_errors_are_one_line(tmp_path, data):
    from test_diffusion import sd

    cfg = with_model(write_cfg(tmp_path / "p.toml", data, tmp_path / "r"),
                     {"kind": "stable-diffusion", "pretrained_pipeline": "nowhere"})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "p.toml: [model] pretrained_pipeline" in msg and "is not a folder" in msg
    cfg = with_model(write_cfg(tmp_path / "e.toml", data, tmp_path / "r"), {"kind": "stable-diffusion"})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "e.toml: [model] pretrained_pipeline is required" in msg
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "unet").mkdir()
    cfg = with_model(write_cfg(tmp_path / "h.toml", data, tmp_path / "r"),
                     {"kind": "stable-diffusion", "pretrained_pipeline": "half"})
    msg = one_line_error(sd("diffusion", "train", str(cfg)))
    assert "not a Stable Diffusion pipeline folder" in msg and "vae, text_encoder, tokenizer" in msg
