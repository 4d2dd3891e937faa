"""Loading what others made: honest splits, metadata paths that stay inside their set, and
output folders where nobody meant sd to write (the real commands, crafted folders)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import read_rows, run_sd
from layout_data import math_like
from PIL import Image
from test_train import experiment

from sd_core.data.overlap import check_splits
from sd_core.data.sources import Source, image_path, read_metadata
from sd_core.errors import DatasetError, SdError


@pytest.fixture()
def data(tmp_path) -> Path:
    math_like(tmp_path / "processed" / "math")
    return tmp_path / "processed"


def rewrite(path: Path, change) -> None:
    rows = read_rows(path)
    rows = change(rows)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, list(rows[0]))
        w.writeheader()
        w.writerows(rows)


# -- honest splits ----------------------------------------------------------------------------------

def test_a_test_split_that_is_the_training_split_is_refused(tmp_path, data):
    math = data / "math"
    shutil.copy(math / "train-metadata.csv", math / "test-metadata.csv")
    exp = experiment(tmp_path, data, epochs=1)
    res = run_sd("train", str(exp), "--out", str(tmp_path / "run"))
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "train/test share subjects math/Subject00, math/Subject01, math/Subject02 and 1 more" in res.stderr
    assert "train/test share 48 images (train/Subject00/Subject00_r-0.png and 47 more)" in res.stderr
    assert "allow_overlap" in res.stderr and not (tmp_path / "run" / "metrics.json").exists()


def test_overlap_is_accepted_when_asked_and_recorded(tmp_path, data):
    math = data / "math"
    rewrite(math / "train-metadata.csv", lambda rows: rows * 3)  # tripled training rows
    exp = experiment(tmp_path, data, epochs=1, extra_data="allow_overlap = true")
    res = run_sd("train", str(exp), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    check = json.loads((tmp_path / "run" / "metrics.json").read_text())["split_check"]
    assert check == {"clean": False, "overlap_allowed": True, "shared": {}, "duplicated": {"train": 48}}
    res = run_sd("train", str(experiment(tmp_path, data, epochs=1, name="strict.toml")), "--out",
                 str(tmp_path / "strict"))
    assert res.returncode != 0 and "train lists 48 images more than once" in res.stderr


def test_clean_splits_are_recorded_clean(data):
    splits = {s: read_metadata(Source(data / "math"), s) for s in ("train", "val", "test")}
    assert check_splits(splits, False, "x") == {"clean": True, "overlap_allowed": False, "shared": {},
                                                "duplicated": {}}
    splits["val"] = splits["val"] + splits["test"][:1]
    with pytest.raises(SdError, match=r"val/test share subjects math/Subject05; val/test share 1 images"):
        check_splits(splits, False, "x")


def test_evaluate_refuses_real_as_gen_and_gen_without_labels(tmp_path, data):
    math = data / "math"
    res = run_sd("evaluate", str(math), str(math), "--out", str(tmp_path / "ev"))
    assert res.returncode != 0 and "is REAL" in res.stderr and "Traceback" not in res.stderr
    gen = tmp_path / "gen"
    shutil.copytree(math, gen)
    rewrite(gen / "metadata.csv", lambda rows: [{**r, "doing_math": ""} for r in rows])
    res = run_sd("evaluate", str(math), str(gen), "--out", str(tmp_path / "ev2"), "--task", "math_activity")
    assert res.returncode != 0 and "no row carries a 'math_activity' label" in res.stderr, res.stderr


# -- metadata paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../secret/secret.png", "/etc/hostname", "train/../../x.png",
                                  "train\\Subject00\\a.png", "C:/x.png", "./train/a.png"])
def test_a_file_name_outside_the_set_is_refused_with_file_and_line(data, name):
    path = data / "math" / "train-metadata.csv"
    rewrite(path, lambda rows: [rows[0], {**rows[1], "file_name": name}, *rows[2:]])
    with pytest.raises(DatasetError, match=r"train-metadata.csv, line 3: file_name .* is not a plain relative"):
        read_metadata(Source(data / "math"), "train")


def test_a_symlink_out_of_the_set_is_refused(tmp_path, data):
    secret = tmp_path / "secret"
    secret.mkdir()
    Image.new("L", (32, 32)).save(secret / "secret.png")
    row = read_metadata(Source(data / "math"), "train")[0]
    target = data / "math" / row["file_name"]
    target.unlink()
    os.symlink(secret / "secret.png", target)
    with pytest.raises(DatasetError, match="leads outside its data set's folder"):
        image_path(row)


def test_training_on_a_row_outside_the_set_fails_cleanly(tmp_path, data):
    (tmp_path / "secret").mkdir()
    Image.new("L", (32, 32)).save(tmp_path / "secret" / "secret.png")
    rewrite(data / "math" / "train-metadata.csv",
            lambda rows: [{**rows[0], "file_name": "../../secret/secret.png"}, *rows[1:]])
    res = run_sd("train", str(experiment(tmp_path, data, epochs=1)), "--out", str(tmp_path / "run"))
    assert res.returncode != 0 and "line 2: file_name '../../secret/secret.png'" in res.stderr
    assert "Traceback" not in res.stderr


def test_meta_build_refuses_paths_out_of_a_component_and_bad_pngs(tmp_path, data):
    (data / "sd.toml").write_text('[paths]\noutput_root = "."\n')
    toml = data / "meta.toml"
    toml.write_text('[meta]\ncomponents = ["math"]\nlabels = ["gender"]\n')
    original = (data / "math" / "metadata.csv").read_text()
    for name in ("/etc/hostname", "../../x.png"):
        rewrite(data / "math" / "metadata.csv", lambda rows, n=name: [{**rows[0], "file_name": n}, *rows[1:]])
        res = run_sd("--config", str(data / "sd.toml"), "meta", "build", str(toml), "--out", str(tmp_path / "mix"))
        assert res.returncode != 0 and "is not a plain relative path" in res.stderr, res.stderr
        assert not (tmp_path / "mix").exists() and not (tmp_path / "x.png").exists()
        (data / "math" / "metadata.csv").write_text(original)
    first = read_rows(data / "math" / "metadata.csv")[0]["file_name"]
    (data / "math" / first).write_bytes(b"not a png at all")
    res = run_sd("--config", str(data / "sd.toml"), "meta", "build", str(toml), "--out", str(tmp_path / "mix"))
    assert res.returncode != 0 and "does not decode as a PNG" in res.stderr and first in res.stderr
    Image.new("RGB", (32, 32)).save(data / "math" / first)
    res = run_sd("--config", str(data / "sd.toml"), "meta", "build", str(toml), "--out", str(tmp_path / "mix"))
    assert res.returncode != 0 and "not a greyscale PNG" in res.stderr


# -- where output may go ----------------------------------------------------------------------------

def test_output_places_are_checked(tmp_path, data, monkeypatch):
    from sd_core.runs.places import check_output_place

    (data / "math" / "preprocess.json").write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.json").write_text("{}")
    (run / "model.json").write_text("{}")
    for out, message in ((run, "is a diffusion run"), (run / "gen", "lies inside a diffusion run"),
                         (data / "math" / "gen", "lies inside a processed data set")):
        with pytest.raises(SdError, match=message):
            check_output_place(out, "generation.json")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("key")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(SdError, match="is your home folder"):
        check_output_place(home, "generation.json")
    with pytest.raises(SdError, match="is not empty and sd did not create it"):
        check_output_place(home / ".ssh", "generation.json")
    with pytest.raises(SdError, match="is a processed data set"):  # generated over another kind
        check_output_place(data / "math", "generation.json")
    check_output_place(data / "math", "preprocess.json", fresh=False)  # its own kind: fine
    gen = tmp_path / "generated"
    gen.mkdir()
    (gen / "generation.json").write_text("{}")
    with pytest.raises(SdError, match="is a generated data set"):  # sd preprocess --output GEN
        check_output_place(gen, "preprocess.json", fresh=False)
    check_output_place(tmp_path / "new", "generation.json")


# -- a text encoder named in labels.json ------------------------------------------------------------

def test_a_text_encoder_with_custom_code_or_pickled_weights_is_refused(tmp_path):
    """auto_map naming local code, and pytorch_model.bin weights (a pickle), each end in one line;
    nothing is imported or unpickled (issue 31, item 8)."""
    import pickle

    from sd_core.diffusion.model import TextEncoder
    from sd_core.errors import ConfigError

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    enc = tmp_path / "encoder"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps({"model_type": "bert", "auto_map": {"AutoModel": "evil.Model"}}))
    (enc / "evil.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    (enc / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ConfigError, match=r"config.json names custom code \(auto_map\)"):
        TextEncoder(enc)
    (enc / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ConfigError, match=r"has no .safetensors weights; sd does not unpickle .bin"):
        TextEncoder(enc)
    assert not (tmp_path / "pwned").exists()


def test_a_data_set_of_one_subject_says_its_splits_are_empty(tmp_path):
    from layout_data import write_processed

    write_processed(tmp_path / "processed" / "math", "math",
                    {"Subject00": {"split": "train", "gender": "F", "health": "H", "age": "20", "count_quality": "1"}},
                    [{"doing_math": str(i % 2)} for i in range(6)], "doing_math", {"0": 5, "1": 16}, 32,
                    columns=("doing_math", "count_quality"))
    res = run_sd("train", str(experiment(tmp_path, tmp_path / "processed", epochs=1)), "--out", str(tmp_path / "run"))
    assert res.returncode == 1 and "Traceback" not in res.stderr and "does not exist" not in res.stderr
    assert ("[data] val_split = 'val': that split of math has no rows (the train split has 1 subject)"
            in res.stderr), res.stderr
