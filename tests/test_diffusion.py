"""Conditional diffusion: training, conditioning, resume, generated data sets and CLI errors.

Everything runs on the CPU with a tiny UNet (16/32 channels) on 16×16 images.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, run_sd, train_until
from PIL import Image

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

SIZE = 16
#: Tiny models gain nothing from intra-op threads, and on a busy 2-core machine OpenMP threads
#: that wait for each other make a step up to 50× slower; one thread keeps the file fast.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


def sd(*args: str):
    return run_sd(*args, env=ONE_THREAD)


def write_processed(root: Path, per_class: int = 12, dataset: str = "parkinsons", seed: int = 0) -> Path:
    """A tiny processed data set: health H = bright top half, PD = bright bottom half."""
    from sd_core.preprocess.layout import csv_text, image_rel_path, metadata_columns
    from sd_core.runs.files import atomic_write_text

    rng = np.random.default_rng(seed)
    rows = []
    for health, bright_top in (("H", True), ("PD", False)):
        for s in range(2):
            subject = f"sub-{health}{s}"
            for i in range(per_class // 2):
                img = np.full((SIZE, SIZE), 40.0)
                half = slice(0, SIZE // 2) if bright_top else slice(SIZE // 2, SIZE)
                img[half] = 210.0
                img += rng.normal(0, 12, img.shape)
                rel = image_rel_path("train", subject, "task-Rest", i)
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / rel)
                rows.append({"file_name": rel, "split": "train", "dataset": dataset, "subject": subject,
                             "gender": "F" if s == 0 else "M", "health": health, "age": 60 + 5 * s,
                             "recording": "task-Rest", "window": i, "start": 2.0 * i,
                             "caption": f"an EEG spectrogram of a subject {health}"})
    cols = metadata_columns([], rows)
    atomic_write_text(root / "train-metadata.csv", csv_text(cols, rows))
    atomic_write_text(root / "metadata.csv", csv_text(cols, rows))
    return root


def write_cfg(path: Path, data: Path, out: Path, conditions=("health",), **training) -> Path:
    tr = {"steps": 60, "lr": 2e-3, "warmup_steps": 5, "checkpoint_steps": 0, "sample_steps": 0,
          "sample_solver_steps": 10, "samples_per_condition": 3, "ema_decay": 0.0, "snr_gamma": 0.0,
          "seed": 0, "batch_size": None}
    tr.update(training)
    batch = tr.pop("batch_size") or 8
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in tr.items())
    path.write_text(textwrap.dedent(f"""\
        [data]
        datasets = ["parkinsons"]
        conditions = {json.dumps(list(conditions))}
        paths = {{ parkinsons = "{data}" }}
        image_size = {SIZE}
        batch_size = {batch}

        [model]
        block_out_channels = [16, 32]
        layers_per_block = 1
        attention = false
        norm_num_groups = 8

        [training]
        output_dir = "{out}"
        """) + lines + "\n")
    return path


def train(cfg: Path, out: Path | None = None, resume: bool = False, on_step=None) -> dict:
    from sd_core.config import load_config
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.train import train_diffusion

    exp = load_diffusion_experiment(cfg)
    return train_diffusion(exp, load_config(None), out=out,
                           resume=resume, on_step=on_step)


def one_line_error(res) -> str:
    assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error:"), res.stderr
    assert "Traceback" not in res.stderr
    return " ".join(lines)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_processed(tmp_path_factory.mktemp("data") / "parkinsons")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data) -> Path:
    """A model trained on the two classes; conditioning must be learned."""
    work = tmp_path_factory.mktemp("run")
    cfg = write_cfg(work / "cfg.toml", data, work / "run", conditions=("health", "age"), steps=250,
                    lr=3e-3, warmup_steps=10, batch_size=12, ema_decay=0.99, snr_gamma=5.0,
                    sample_steps=0, checkpoint_steps=0)
    res = train(cfg)
    assert res["steps"] == 250
    return work / "run"


def test_loss_falls_when_overfitting(tmp_path, data, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", steps=60)
    res = train(cfg)
    hist = json.loads((tmp_path / "run" / "history.json").read_text())
    losses = [h["loss"] for h in hist]
    assert len(losses) == 60
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.6 * first, (first, last)
    assert res["final_loss"] == pytest.approx(last)
    run = tmp_path / "run"
    for p in ("unet/diffusion_pytorch_model.safetensors", "unet/config.json", "conditioning/config.json",
              "conditioning/conditioning.safetensors", "scheduler/scheduler_config.json", "labels.json",
              "loss.png", "config.toml", "samples/step-000060.png"):
        assert (run / p).is_file(), p
    labels = json.loads((run / "labels.json").read_text())
    assert labels["conditions"][0]["classes"] == ["H", "PD"]
    assert labels["conditions"][0]["columns"] == {"parkinsons": ["health"]}
    assert not list(run.rglob("*.pkl")) or all("checkpoints" in str(p) for p in run.rglob("*.pkl"))


def test_conditioning_controls_the_class(trained, tmp_path):
    """Generated images of each class have that class's bright half (≥ 90 %)."""
    from sd_core.diffusion.generate import generate_dataset

    out = tmp_path / "gen"
    res = generate_dataset(trained, out, n=10, balanced=True, steps=20, guidance=3.0, seed=1)
    assert res["per_subject"] == {"gen-H": 10, "gen-PD": 10}
    right = 0
    for r in res["rows"]:
        img = np.asarray(Image.open(out / r["file_name"]), dtype=np.float64)
        assert img.shape == (SIZE, SIZE)
        top_minus_bottom = img[: SIZE // 2].mean() - img[SIZE // 2:].mean()
        right += (top_minus_bottom > 0) == (r["health"] == "H")
    print(f"{right} of 20 generated images show their class")
    assert right >= 18, f"only {right} of 20 generated images show their class"


def test_generated_folder_loads_like_real_data(trained, tmp_path):
    from sd_core.data.images import ProcessedImages
    from sd_core.data.select import read_rows as select_rows
    from sd_core.data.sources import Source, read_metadata
    from sd_core.data.tasks import resolve_tasks
    from sd_core.plugins import get_registry

    out = tmp_path / "gen"
    res = sd("generate", str(trained), "--n", "3", "--condition", "health=PD",
                 "--condition", "health=H,age=70", "--steps", "4", "--out", str(out))
    assert res.returncode == 0, res.stderr
    rows = read_metadata(Source(out, "parkinsons"), "train")
    assert len(rows) == 6
    assert {r["generated"] for r in rows} == {"1"}
    assert [r["health"] for r in rows] == ["PD"] * 3 + ["H"] * 3
    assert [r["age"] for r in rows[3:]] == ["70"] * 3
    assert {r["age"] for r in rows[:3]} <= {"60", "65"}  # drawn from training subjects with PD
    assert all(r["caption"].startswith("an EEG spectrogram") for r in rows)
    assert read_rows(out / "metadata.csv") == read_rows(out / "train-metadata.csv")
    header = (out / "metadata.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == ["file_name", "split", "dataset", "subject", "gender", "health", "age",
                           "recording", "window", "start"]
    assert header[-1] == "caption"
    reg = get_registry()
    both = select_rows([Source(out, "parkinsons")], "train")
    tasks = resolve_tasks(["health", "age"], ["parkinsons"], reg, both)
    ds = ProcessedImages(both, tasks, image_size=32)
    batch = ds.__getitems__(list(range(6)))
    assert batch["image"].shape == (6, 1, 32, 32)
    assert float(batch["image"].min()) >= -1 and float(batch["image"].max()) <= 1
    assert batch["targets"]["health"].tolist() == [1, 1, 1, 0, 0, 0]
    gen = json.loads((out / "generation.json").read_text())
    assert gen["steps"] == 4 and gen["scheduler"] == "dpm" and gen["guidance"] == 2.0


def test_balanced_counts_and_determinism(trained, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        res = sd("generate", str(trained), "--n", "4", "--balanced", "--steps", "3",
                     "--scheduler", "ddim", "--seed", "5", "--out", str(out))
        assert res.returncode == 0, res.stderr
    rows = read_rows(a / "train-metadata.csv")
    counts = {h: sum(r["health"] == h for r in rows) for h in ("H", "PD")}
    assert counts == {"H": 4, "PD": 4}
    for r in rows:
        assert (a / r["file_name"]).read_bytes() == (b / r["file_name"]).read_bytes()
    res = sd("generate", str(trained), "--n", "4", "--balanced", "--out", str(a))
    assert "already holds a generated data set" in one_line_error(res)


def test_resume_continues_from_checkpoint(tmp_path, data, monkeypatch):
    from safetensors.torch import load_file


    monkeypatch.chdir(tmp_path)
    kw = {"steps": 12, "checkpoint_steps": 4, "ema_decay": 0.9, "lr": 1e-3, "snr_gamma": 5.0, "grad_accum": 2,
              "sample_solver_steps": 2, "samples_per_condition": 1}
    full = write_cfg(tmp_path / "full.toml", data, tmp_path / "full", **kw)
    part = write_cfg(tmp_path / "part.toml", data, tmp_path / "part", **kw)
    train(full)

    train_until(train, part, 6)
    assert [p.name for p in sorted((tmp_path / "part" / "checkpoints").iterdir())] == ["step-000004"]
    assert not (tmp_path / "part" / "unet").exists()
    with pytest.raises(Exception, match="--resume"):
        train(part)
    res = train(part, resume=True)
    assert res["start"] == 4 and res["steps"] == 12
    h_full = json.loads((tmp_path / "full" / "history.json").read_text())
    h_part = json.loads((tmp_path / "part" / "history.json").read_text())
    assert [h["step"] for h in h_part] == list(range(1, 13))
    assert [h["loss"] for h in h_part] == [h["loss"] for h in h_full]
    for sub in ("unet/diffusion_pytorch_model.safetensors", "conditioning/conditioning.safetensors"):
        a, b = load_file(str(tmp_path / "full" / sub)), load_file(str(tmp_path / "part" / sub))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k


def test_cli_errors(tmp_path, data, trained):
    bad_key = write_cfg(tmp_path / "bad.toml", data, tmp_path / "r")
    bad_key.write_text(bad_key.read_text().replace("attention = false", "attention = false\nheads = 2"))
    msg = one_line_error(sd("diffusion", "train", str(bad_key)))
    assert "unknown key 'heads'" in msg and "attention" in msg and "bad.toml" in msg

    bad_choice = write_cfg(tmp_path / "choice.toml", data, tmp_path / "r", prediction_type="x0")
    msg = one_line_error(sd("diffusion", "train", str(bad_choice)))
    assert "prediction_type" in msg and "epsilon, v_prediction" in msg

    bad_cond = write_cfg(tmp_path / "cond.toml", data, tmp_path / "r", conditions=("mood",))
    msg = one_line_error(sd("diffusion", "train", str(bad_cond)))
    assert "unknown task 'mood'" in msg and "health" in msg

    fp16 = write_cfg(tmp_path / "fp16.toml", data, tmp_path / "r", mixed_precision="fp16")
    if not torch.cuda.is_available():
        assert "needs a CUDA GPU" in one_line_error(sd("diffusion", "train", str(fp16)))

    out = str(tmp_path / "g")
    msg = one_line_error(sd("generate", str(trained), "--condition", "mood=happy", "--out", out))
    assert "unknown condition 'mood'" in msg and "health, age" in msg
    msg = one_line_error(sd("generate", str(trained), "--condition", "health=XX", "--out", out))
    assert "allowed: H, PD" in msg
    msg = one_line_error(sd("generate", str(trained), "--condition", "age=old", "--out", out))
    assert "age must be a number" in msg
    msg = one_line_error(sd("generate", str(tmp_path / "nope"), "--out", out))
    assert "does not exist" in msg
    msg = one_line_error(sd("generate", str(data), "--out", out))
    assert "not a finished diffusion run" in msg


def test_caption_conditioning_with_a_local_text_encoder(tmp_path, data, monkeypatch):
    """A tiny randomly initialised BERT saved locally conditions training and generation."""
    import transformers  # in the test extra, so that this feature is tested wherever the suite runs

    from sd_core.diffusion.generate import generate_dataset
    from sd_core.diffusion.model import load_run

    monkeypatch.chdir(tmp_path)
    enc = tmp_path / "bert"
    words = "an eeg spectrogram of a subject h pd healthy with parkinson ' s disease female male year old"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(words.split())), *map(str, range(100))]
    enc.mkdir()
    (enc / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(enc / "vocab.txt")).save_pretrained(str(enc))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=80)
    transformers.BertModel(config).save_pretrained(str(enc))
    cfg = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", steps=6, sample_solver_steps=2,
                    samples_per_condition=1)
    cfg.write_text(cfg.read_text().replace("attention = false", f'attention = false\ntext_encoder = "{enc}"'))
    train(cfg)
    run = load_run(tmp_path / "run")
    assert run.spec.text_encoder == str(enc) and run.text is not None
    assert run.model.cond.text_proj.in_features == 16
    res = generate_dataset(tmp_path / "run", tmp_path / "gen", n=2, balanced=True, steps=2)
    assert res["images"] == 4


@pytest.mark.slow
def test_two_process_cpu_run(tmp_path, data):
    """`accelerate launch` with two CPU processes: one run folder, checkpoints, the final model."""
    import os
    import subprocess
    import sys

    from test_train import free_port

    cfg = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", steps=6, checkpoint_steps=3,
                    sample_solver_steps=2, samples_per_condition=1, ema_decay=0.9)
    env = {**os.environ, **ONE_THREAD, "COLUMNS": "200"}
    env.pop("SD_CONFIG", None)
    res = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
                          "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                          "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                          "-m", "sd_core", "diffusion", "train", str(cfg)], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    history = json.loads((run / "history.json").read_text())
    assert [h["step"] for h in history] == list(range(1, 7))
    state = json.loads((run / "state.json").read_text())
    assert state["latest"] == "step-000006" and state["written"] == ["step-000003", "step-000006"]
    assert (run / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert res.stdout.count("parameters;") == 1  # the summary line comes from one process


def _with_val(root: Path) -> Path:
    """write_processed's set with one subject per class moved to a val split."""
    from sd_core.preprocess.layout import csv_text
    from sd_core.runs.files import atomic_write_text

    rows = read_rows(root / "metadata.csv")
    for r in rows:
        r["split"] = "val" if r["subject"].endswith("1") else "train"
    cols = list(rows[0])
    for split in ("train", "val"):
        atomic_write_text(root / f"{split}-metadata.csv", csv_text(cols, [r for r in rows if r["split"] == split]))
    atomic_write_text(root / "metadata.csv", csv_text(cols, rows))
    return root


def test_quality_is_tracked_and_checkpoints_kept_by_kid(tmp_path, trained, monkeypatch):
    """KID against real validation images every N steps: in history.json and loss.png, best
    checkpoints kept by it; and the probe itself ranks a trained model above an untrained one."""
    from sd_core.config import load_config
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.model import load_run
    from sd_core.diffusion.quality import QualityProbe
    from sd_core.plugins import get_registry

    monkeypatch.chdir(tmp_path)
    data = _with_val(write_processed(tmp_path / "parkinsons", per_class=12))
    cfg = write_cfg(tmp_path / "q.toml", data, tmp_path / "run", steps=6, quality_steps=2, quality_images=8,
                    keep_best=2, keep_checkpoints=1, sample_solver_steps=3, ema_decay=0.9)
    res = train(cfg)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    checked = [h for h in history if "kid" in h]
    assert [h["step"] for h in checked] == [2, 4, 6]
    assert all(np.isfinite(h["kid"]) and np.isfinite(h["fid"]) and h["kid_se"] >= 0 for h in checked)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    ranked = sorted(checked, key=lambda h: h["kid"])[:2]
    assert [n for _, n in state["best"]] == [f"step-{h['step']:06d}" for h in ranked]
    kept = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert kept == sorted({state["latest"], *(n for _, n in state["best"])})
    assert res["best"]["checkpoint"] == state["best"][0][1]
    assert (tmp_path / "run" / "loss.png").is_file()
    assert (tmp_path / "run" / "quality-classifier" / "run.json").is_file()

    # the measure means something: the trained model of this file beats an untrained one
    exp = load_diffusion_experiment(cfg)
    good = load_run(trained)
    probe = QualityProbe(exp, load_config(None), get_registry(), tmp_path / "run", good.spec)
    q_good = probe.measure(good.model, good.scheduler_config, steps=10, guidance=2.0)
    torch.manual_seed(0)
    raw = load_run(trained)
    raw.model.network = get_registry().diffusion_model("unet").build(
        SIZE, block_out_channels=[16, 32], layers_per_block=1, attention=False, norm_num_groups=8,
        patch_size=1, pretrained="").eval()
    q_bad = probe.measure(raw.model, raw.scheduler_config, steps=10, guidance=2.0)
    assert q_good["kid"] < q_bad["kid"] and q_good["fid"] < q_bad["fid"], (q_good, q_bad)


def test_patches_train_and_generate_full_size_images(tmp_path, data, monkeypatch):
    """patch_size = 2: the UNet sees 2×2 patches as 4 channels at half the size; images come out
    whole, and the loss falls as without patches."""
    from sd_core.diffusion.model import load_run

    monkeypatch.chdir(tmp_path)
    text = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", steps=60).read_text()
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(text.replace("attention = false", "attention = false\npatch_size = 2"))
    train(cfg)
    losses = [h["loss"] for h in json.loads((tmp_path / "run" / "history.json").read_text())]
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    unet = json.loads((tmp_path / "run" / "unet" / "config.json").read_text())
    assert unet["in_channels"] == unet["out_channels"] == 4 and unet["sample_size"] == SIZE // 2
    run = load_run(tmp_path / "run")
    assert run.model.network.patch == 2 and run.model.image_size == SIZE
    x = torch.randn(3, 1, SIZE, SIZE)
    assert torch.equal(torch.nn.functional.pixel_shuffle(torch.nn.functional.pixel_unshuffle(x, 2), 2), x)
    res = sd("generate", str(tmp_path / "run"), "--n", "2", "--balanced", "--steps", "3", "--out",
             str(tmp_path / "gen"))
    assert res.returncode == 0, res.stderr
    sizes = {Image.open(p).size for p in (tmp_path / "gen").rglob("*.png")}
    assert sizes == {(SIZE, SIZE)}
