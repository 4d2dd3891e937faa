"""Processed and generated folders load with Hugging Face ``datasets``' imagefolder builder,
split by split with their label columns (a ``metadata.csv`` inside each split folder), and
``--overwrite`` removes those files with the rest of what sd wrote."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sd_testeeg
from conftest import read_rows, small_prep

from sd_core.errors import SdError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.layout import clear_output, split_csv_text

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
datasets = pytest.importorskip("datasets")
datasets.disable_progress_bars()

PLUGIN = sd_testeeg.TestEEG()


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> tuple[Path, Path]:
    raw = tmp_path_factory.mktemp("raw") / "testeeg"
    sd_testeeg.write_testeeg(raw, seed=1, n_subjects=6, seconds=20.0, runs=1)
    out = tmp_path_factory.mktemp("out") / "testeeg"
    preprocess_dataset(PLUGIN, raw, out, small_prep(resolution=64), list(PLUGIN.channels),
                       {"event_overlap": 0.5})
    return raw, out


def test_processed_folder_loads_split_by_split(processed, tmp_path):
    _, out = processed
    for split in ("train", "val", "test"):
        inside = read_rows(out / split / "metadata.csv")
        top = read_rows(out / f"{split}-metadata.csv")
        assert [r["file_name"] for r in inside] == [r["file_name"][len(split) + 1:] for r in top]
        assert all((out / split / r["file_name"]).is_file() for r in inside)
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    counts = {s: len(read_rows(out / f"{s}-metadata.csv")) for s in ("train", "val", "test")}
    assert {k: ds[k].num_rows for k in ds} == {"train": counts["train"], "validation": counts["val"],
                                               "test": counts["test"]}
    for split in ds:
        assert {"image", "gender", "health", "age", "event", "subject", "caption"} <= set(ds[split].column_names)
        assert "label" not in ds[split].column_names  # not the subject folder names
    assert set(ds["test"]["subject"]).isdisjoint(ds["train"]["subject"])


def test_overwrite_removes_the_split_metadata_and_a_users_file_is_refused(processed, tmp_path):
    raw, ref = processed
    out = tmp_path / "testeeg"
    prep = small_prep(resolution=64)
    preprocess_dataset(PLUGIN, raw, out, prep, list(PLUGIN.channels), {"event_overlap": 0.5})
    assert (out / "train" / "metadata.csv").read_bytes() == (ref / "train" / "metadata.csv").read_bytes()
    clear_output(out, raw)
    assert not (out / "train").exists() and not (out / "metadata.csv").exists()
    (out / "val").mkdir(parents=True)
    (out / "val" / "metadata.csv").write_text("file_name\nmine.png\n")
    with pytest.raises(SdError, match="was not written by sd"):
        preprocess_dataset(PLUGIN, raw, out, prep, list(PLUGIN.channels), {"event_overlap": 0.5},
                           overwrite=True)
    assert (out / "val" / "metadata.csv").read_text() == "file_name\nmine.png\n"


def test_whole_numbers_with_gaps_read_as_one_type_in_every_split():
    cols = ["file_name", "age", "start"]
    rows = [{"file_name": "train/a/x-0.png", "split": "train", "age": "61", "start": "0.0"},
            {"file_name": "val/b/x-0.png", "split": "val", "age": "", "start": "2.0"}]
    text = split_csv_text(cols, rows[:1], "train", rows)
    assert text == "file_name,age,start\na/x-0.png,61.0,0.0\n"
    assert split_csv_text(cols, rows[:1], "train") == "file_name,age,start\na/x-0.png,61,0.0\n"
    with pytest.raises(SdError, match="not inside the val folder"):
        split_csv_text(cols, rows[:1], "val")


def test_generated_folder_loads_with_its_labels(tmp_path):
    import torch
    from test_diffusion import train, write_cfg, write_processed

    from sd_core.diffusion.generate import generate_dataset, prepare_output

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = write_processed(tmp_path / "data" / "parkinsons", per_class=4)
        cfg = write_cfg(tmp_path / "cfg.toml", data, tmp_path / "run", conditions=("health",), steps=2,
                        warmup_steps=1, samples_per_condition=1, batch_size=4)
        train(cfg)
        gen = tmp_path / "gen"
        generate_dataset(tmp_path / "run", gen, n=2, balanced=True, steps=2, seed=0)
    finally:
        torch.set_num_threads(threads)
    assert [r["file_name"] for r in read_rows(gen / "train" / "metadata.csv")][0].startswith("gen-")
    ds = datasets.load_dataset("imagefolder", data_dir=str(gen), cache_dir=str(tmp_path / "cache"))
    assert list(ds) == ["train"] and ds["train"].num_rows == 4
    assert sorted(ds["train"]["health"]) == ["H", "H", "PD", "PD"]
    assert {"dataset", "generated", "caption"} <= set(ds["train"].column_names)
    prepare_output(gen, overwrite=True)
    assert not (gen / "train").exists()
