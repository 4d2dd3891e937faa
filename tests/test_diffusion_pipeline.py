"""A run folder is a diffusers pipeline: SpectrogramPipeline.from_pretrained(RUN), and stock
DiffusionPipeline.from_pretrained(RUN) (no trust_remote_code), sample what sd generate samples;
a crafted run folder gets nothing imported from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from test_diffusion import train, write_cfg, write_processed  # noqa: E402
from test_diffusion_kinds import DIT, with_model  # noqa: E402


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("pipe")
    data = write_processed(work / "parkinsons")
    out = {}
    for kind in ("unet", "dit"):
        cfg = write_cfg(work / f"{kind}.toml", data, work / kind, conditions=("health", "age"), steps=4,
                        sample_steps=0, sample_solver_steps=2, samples_per_condition=1, ema_decay=0.9)
        if kind == "dit":
            with_model(cfg, {**DIT, "num_layers": 2})
        train(cfg)
        out[kind] = work / kind
    return out


@pytest.mark.parametrize("kind", ["unet", "dit"])
def test_pipeline_samples_what_sd_generate_samples(runs, kind, tmp_path):
    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.pipeline import SpectrogramPipeline

    run = runs[kind]
    index = json.loads((run / "model_index.json").read_text())
    assert index["_class_name"] == "SpectrogramPipeline"
    assert index["conditioning"] == ["sd_core.diffusion.conditioning", "Conditioning"]
    net = {"unet": "UNet2DModel", "dit": "SD3Transformer2DModel"}[kind]
    assert index[{"unet": "unet", "dit": "transformer"}[kind]] == ["diffusers", net]

    generate_dataset(run, tmp_path / "gen", n=3, conditions=[{"health": "PD", "age": "70"}, {"health": "H"}],
                     steps=4, guidance=2.5, seed=7, batch_size=2)
    rows = read_rows(tmp_path / "gen" / "train-metadata.csv")
    expected = np.stack([np.asarray(Image.open(tmp_path / "gen" / r["file_name"])) for r in rows])
    ages = [float(r["age"]) for r in rows]  # the H rows' ages sd generate drew from training subjects

    pipe = SpectrogramPipeline.from_pretrained(str(run))
    labels = {"health": [r["health"] for r in rows], "age": ages}
    got = pipe(labels, num_inference_steps=4, guidance_scale=2.5, seed=7, batch_size=2, output_type="np").images
    assert got.dtype == np.uint8 and got.shape == expected.shape == (6, 16, 16)
    assert np.array_equal(got, expected)
    pil = pipe(labels, num_inference_steps=4, guidance_scale=2.5, seed=7, batch_size=2).images
    assert np.array_equal(np.stack([np.asarray(p) for p in pil]), expected)
    other = pipe(labels, num_inference_steps=4, guidance_scale=2.5, seed=8, batch_size=2, output_type="np").images
    assert not np.array_equal(other, expected)


def test_stock_diffusion_pipeline_loads_a_run_without_remote_code(runs, tmp_path):
    from diffusers import DiffusionPipeline

    from sd_core.diffusion.pipeline import SpectrogramPipeline  # registers the class with diffusers

    run = runs["unet"]
    pipe = DiffusionPipeline.from_pretrained(str(run))
    assert type(pipe).__name__ == "SpectrogramPipeline" and pipe.unet is not None and pipe.transformer is None
    a = pipe({"health": "PD", "age": 62}, num_images=2, num_inference_steps=3, seed=1, output_type="pt").images
    b = SpectrogramPipeline.from_pretrained(str(run))({"health": "PD", "age": 62}, num_images=2,
                                                      num_inference_steps=3, seed=1, output_type="pt").images
    assert a.shape == (2, 1, 16, 16) and torch.equal(a, b)
    # the inputs are checked against the conditioning config
    from sd_core.errors import SdError

    with pytest.raises(SdError, match="allowed: H, PD"):
        pipe({"health": "XX"})
    with pytest.raises(SdError, match="conditioned on: health, age"):
        pipe({"mood": "happy"})
    cfg = json.loads((run / "conditioning" / "config.json").read_text())
    assert cfg["_class_name"] == "Conditioning" and cfg["classes"] == {"health": ["H", "PD"]}
    assert set(cfg["stats"]) == {"age"}


def _crafted(run: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A copy of ``run`` and the marker file its planted module would write if imported."""
    import shutil

    copy = tmp_path / name
    shutil.copytree(run, copy)
    return copy, tmp_path / f"{name}-ran"


def _plant(path: Path, marker: Path) -> None:
    path.write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                    "from sd_core.diffusion.conditioning import Conditioning\n", encoding="utf-8")


def test_a_component_module_in_the_run_folder_is_never_imported(runs, tmp_path):
    from diffusers import DiffusionPipeline

    from sd_core.diffusion.pipeline import SpectrogramPipeline
    from sd_core.errors import SdError

    run, marker = _crafted(runs["unet"], tmp_path, "evil")
    index = json.loads((run / "model_index.json").read_text())
    index["conditioning"] = ["evil", "Conditioning"]
    (run / "model_index.json").write_text(json.dumps(index))
    _plant(run / "conditioning" / "evil.py", marker)
    with pytest.raises(SdError, match=r"model_index.json: conditioning must be"):
        SpectrogramPipeline.from_pretrained(str(run))
    with pytest.raises(SdError, match="loads no code from a run folder"):
        SpectrogramPipeline.from_pretrained(str(run), trust_remote_code=True)
    with pytest.raises(ValueError, match="trust_remote_code"):  # diffusers' own refusal, no import
        DiffusionPipeline.from_pretrained(str(run))
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    ({"unet": ["os", "system"]}, r"unet comes from 'os'"),
    ({"unet": ["diffusers", "NoSuchModel"]}, r"diffusers has no class 'NoSuchModel'"),
    ({"_class_name": "StableDiffusionPipeline"}, r"_class_name must be 'SpectrogramPipeline'"),
    ({"safety_checker": ["diffusers", "UNet2DModel"]}, r"unknown component 'safety_checker'"),
    ({"scheduler": "DDPMScheduler"}, r"scheduler must be \[library, class\]"),
])
def test_a_crafted_model_index_is_refused_naming_the_file(runs, tmp_path, change, message):
    from sd_core.diffusion.pipeline import SpectrogramPipeline
    from sd_core.errors import SdError

    run, _ = _crafted(runs["unet"], tmp_path, "crafted")
    index = json.loads((run / "model_index.json").read_text())
    (run / "model_index.json").write_text(json.dumps({**index, **change}))
    with pytest.raises(SdError, match=message) as info:
        SpectrogramPipeline.from_pretrained(str(run))
    assert str(run / "model_index.json") in str(info.value)


def test_code_beside_the_components_is_refused(runs, tmp_path):
    from sd_core.diffusion.pipeline import SpectrogramPipeline
    from sd_core.errors import SdError

    run, marker = _crafted(runs["unet"], tmp_path, "pipeline-file")
    _plant(run / "pipeline.py", marker)
    with pytest.raises(SdError, match=r"holds code \(pipeline.py\)"):
        SpectrogramPipeline.from_pretrained(str(run))
    assert not marker.exists()


def test_generate_refuses_to_write_into_its_run_or_the_home_folder(runs, tmp_path):
    from conftest import run_sd

    run = runs["unet"]
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine\n")
    for out, message in ((run, "is a diffusion run"), (run / "gen", "lies inside a diffusion run"),
                         (home, "is your home folder")):
        res = run_sd("generate", str(run), "--out", str(out), "--n", "1", env={"HOME": str(home)})
        assert res.returncode != 0 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
    assert sorted(p.name for p in home.iterdir()) == [".bashrc"]


@pytest.mark.parametrize("key, value, why", [
    ("num_train_timesteps", 0, "from 2 to 100000"), ("num_train_timesteps", -5, "from 2 to"),
    ("num_train_timesteps", "abc", "from 2 to"), ("num_train_timesteps", 1e12, "from 2 to"),
    ("beta_schedule", "evil", "must be one of linear"),
])
def test_a_bad_scheduler_config_is_named_not_a_traceback(runs, tmp_path, key, value, why):
    from conftest import run_sd

    from sd_core.diffusion.pipeline import SpectrogramPipeline
    from sd_core.errors import SdError

    run, _ = _crafted(runs["unet"], tmp_path, "sched")
    path = run / "scheduler" / "scheduler_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    res = run_sd("generate", str(run), "--out", str(tmp_path / "gen"), "--n", "1")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert f"scheduler_config.json: {key} = {value!r} must be" in res.stderr and why in res.stderr, res.stderr
    with pytest.raises(SdError, match=f"scheduler_config.json: {key}"):
        SpectrogramPipeline.from_pretrained(str(run))


def test_an_unknown_model_kind_names_model_json(runs, tmp_path):
    from conftest import run_sd

    run, _ = _crafted(runs["unet"], tmp_path, "kind")
    info = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**info, "kind": "nosuchkind"}))
    res = run_sd("generate", str(run), "--out", str(tmp_path / "gen"), "--n", "1")
    assert res.returncode != 0 and "model.json: unknown diffusion model kind 'nosuchkind'" in res.stderr, res.stderr


@pytest.mark.parametrize("file, key, value, message", [
    ("labels.json", "image_size", -3, "image_size = -3 must be from 1 to 8192"),
    ("conditioning/config.json", "dim", -1, "dim = -1 must be a whole number from 1 to"),
    ("conditioning/config.json", "frequencies", 1e9, "frequencies = 1000000000.0 must be a whole number"),
    ("conditioning/config.json", "categorical", {"health": 0}, "categorical must map each condition"),
    ("unet/config.json", "sample_size", -4, "sample_size = -4 must be a whole number from 1 to"),
])
def test_every_config_read_from_a_run_is_checked(runs, tmp_path, file, key, value, message):
    """Values torch would meet as negative tensor sizes deep in sampling are named up front."""
    from sd_core.diffusion.model import load_run
    from sd_core.errors import SdError

    run, _ = _crafted(runs["unet"], tmp_path, "configs")
    path = run / file
    path.write_text(json.dumps({**json.loads(path.read_text()), key: value}))
    with pytest.raises(SdError, match=f"{file}: {message}"):
        load_run(run)


def test_a_generation_that_cannot_fit_is_refused_at_once(runs, tmp_path):
    from conftest import run_sd

    res = run_sd("generate", str(runs["unet"]), "--n", "1000000000", "--out", str(tmp_path / "gen"), timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "1000000000 generated images of 16×16 would take about" in res.stderr and "of memory" in res.stderr
    assert not (tmp_path / "gen").exists()


def test_generate_on_a_full_disk_or_read_only_folder_is_one_line(runs, tmp_path):
    """Issue 31, item 6, on a real tmpfs (skipped where this process may not mount)."""
    import subprocess

    from conftest import run_sd

    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        for state, reason in (("rw", "no space left on the device"), ("ro", "the file system is read-only")):
            subprocess.run(["mount", "-o", f"remount,{state}", str(mnt)], check=True)
            res = run_sd("generate", str(runs["unet"]), "--n", "8", "--steps", "2", "--out", str(mnt / f"gen-{state}"))
            assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
            last = res.stderr.strip().splitlines()[-1]
            assert last.startswith(f"error: {mnt}") and reason in last, last
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
