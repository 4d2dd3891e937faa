"""sd.toml: search order, validation messages, `sd config show`, `sd init`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_sd

from sd_core.config import load_config
from sd_core.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SD_CONFIG", raising=False)
    cfg = load_config()
    assert cfg.source is None
    assert cfg.raw_root("seed") == tmp_path / "data/raw/seed"
    assert cfg.output_dir("seed") == tmp_path / "data/processed/seed"
    assert cfg.preprocess["nsamps"] == 2000 and cfg.preprocess["bins"] == "log"


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    local = write(tmp_path / "sd.toml", "[preprocess]\nnsamps = 1000\n")
    env = write(tmp_path / "env.toml", "[preprocess]\nnsamps = 1500\n")
    explicit = write(tmp_path / "explicit.toml", "[preprocess]\nnsamps = 500\n")
    monkeypatch.delenv("SD_CONFIG", raising=False)
    assert load_config().source == local.resolve()
    monkeypatch.setenv("SD_CONFIG", str(env))
    assert load_config().preprocess["nsamps"] == 1500
    assert load_config(explicit).preprocess["nsamps"] == 500
    monkeypatch.setenv("SD_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="missing.toml does not exist"):
        load_config()


def test_relative_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "proj").mkdir()
    cfg_file = write(tmp_path / "proj" / "sd.toml",
                     '[paths]\nraw_root = "raw"\n[datasets.seed]\nraw = "/abs/SEED-V"\nnsamps = 1000\n')
    cfg = load_config(cfg_file)
    assert cfg.raw_root("math") == tmp_path / "proj" / "raw" / "math"
    assert cfg.raw_root("seed") == Path("/abs/SEED-V")
    assert cfg.preprocess_params("seed")["nsamps"] == 1000
    assert cfg.preprocess_params("math")["nsamps"] == 2000


@pytest.mark.parametrize("text, expected", [
    ("[preprocess]\nnsmaps = 100\n",
     ["[preprocess] unknown key 'nsmaps'", "allowed:", "nsamps", "overlap"]),
    ("[preprocess]\nnsamps = \"2000\"\n", ["[preprocess] nsamps must be an integer", "'2000'"]),
    ("[preprocess]\nnsamps = true\n", ["[preprocess] nsamps must be an integer"]),
    ("[preprocess]\nbins = \"mel\"\n", ["bins = 'mel' is not allowed", "allowed: log, linear"]),
    ("[preprocess]\noverlap = 1.5\n", ["overlap must be at least 0 and less than 1"]),
    ("[preprocess]\nsplits = { train = 0.8, holdout = 0.2 }\n", ["unknown split(s) holdout"]),
    ("[preprocess]\nsplits = { train = 0.9, val = 0.9 }\n", ["splits must add up to 1", "add up to 1.8"]),
    ("[prepocess]\nfs = 100\n", ["unknown section [prepocess]", "allowed: datasets, paths, preprocess"]),
    ("[datasets.sead]\nraw = \"x\"\n",
     ["[datasets.sead] unknown data set 'sead'", "installed: chbmit, math, parkinsons, seed"]),
    ("[datasets.seed]\nrwa = \"x\"\n", ["[datasets.seed] unknown key 'rwa'", "raw", "channels"]),
    ("[datasets.seed]\nchannels = \"Fp1\"\n", ["[datasets.seed] channels must be a list"]),
    ("[datasets.math]\nstates = \"sleep\"\n",
     ["[datasets.math] states = 'sleep' is not allowed", "allowed: both, rest, arithmetic"]),
    ("[datasets.chbmit]\nseizure_overlap = \"half\"\n", ["[datasets.chbmit] seizure_overlap must be a number"]),
    ("[preprocess\n", ["not valid TOML"]),
])
def test_validation_messages_name_file_key_and_allowed(tmp_path, text, expected):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg
    for part in expected:
        assert part in msg, msg
    # and the CLI prints it in one line without a traceback
    res = run_sd("--config", str(path), "config", "show")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert res.stderr.startswith("error: ") and expected[0] in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2


def test_a_file_not_in_utf8_is_one_line(tmp_path):
    path = tmp_path / "sd.toml"
    path.write_bytes('[paths]\noutput_root = "café"\n'.encode("latin-1"))  # a Windows editor's default
    res = run_sd("--config", str(path), "datasets")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.strip() == (f"error: {path}: not UTF-8 text (byte 0xe9 at offset 26); TOML files are "
                                  "UTF-8: save it in that encoding")


def test_config_show_prints_resolved_values(tmp_path):
    path = write(tmp_path / "sd.toml", "[preprocess]\nfs = 125\n[datasets.chbmit]\nraw = \"/data/chb\"\n")
    res = run_sd("--config", str(path), "config", "show", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["source"] == str(path.resolve())
    assert data["preprocess"]["fs"] == 125 and data["preprocess"]["nsamps"] == 2000
    assert data["datasets"]["chbmit"]["raw"] == "/data/chb"
    text = run_sd("--config", str(path), "config", "show").stdout
    assert "fs = 125" in text and "[datasets.chbmit]" in text


def test_init_writes_a_commented_starter_that_loads_to_the_defaults(tmp_path):
    res = run_sd("init", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = (tmp_path / "sd.toml").read_text()
    assert text.count("#") > 10 and "[preprocess]" in text and "[datasets.seed]" in text
    cfg = load_config(tmp_path / "sd.toml")
    assert cfg.preprocess == load_config.__globals__["defaults"]()["preprocess"]
    again = run_sd("init", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr
    assert run_sd("init", "--force", cwd=tmp_path).returncode == 0


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-125.0"])
def test_fs_must_be_finite_and_positive(tmp_path, value):
    path = write(tmp_path / "bad.toml", f"[preprocess]\nfs = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    msg = str(exc.value)
    assert str(path) in msg and "[preprocess] fs must be" in msg
    path = write(tmp_path / "bad2.toml", f"[datasets.seed]\nfs = {value}\n")
    with pytest.raises(ConfigError, match=r"\[datasets.seed\] fs must be"):
        load_config(path)


def test_defaults_are_the_original_projects():
    from sd_core.config import defaults

    p = defaults()["preprocess"]
    assert (p["fs"], p["nsamps"], p["overlap"], p["resolution"], p["bins"]) == (125.0, 2000, 0.5, 256, "log")
    assert p["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert (p["preset"], p["units"], p["resample"], p["hop"], p["rounding"]) == (
        "original", "V", "decimate", "original", "truncate")


def test_improved_preset_turns_on_every_improvement_unless_a_key_says_otherwise(tmp_path):
    improved = {"units": "uV", "resample": "poly", "hop": "smallest", "rounding": "nearest"}
    cfg = load_config(write(tmp_path / "a.toml", '[preprocess]\npreset = "improved"\n'))
    assert {k: cfg.preprocess_params("seed")[k] for k in improved} == improved
    cfg = load_config(write(tmp_path / "b.toml", '[preprocess]\npreset = "improved"\nunits = "V"\n'
                                                 '[datasets.math]\nrounding = "truncate"\n'))
    assert cfg.preprocess_params("seed")["units"] == "V"
    assert cfg.preprocess_params("math")["rounding"] == "truncate"
    assert cfg.preprocess_params("seed")["rounding"] == "nearest"
    # per data set
    cfg = load_config(write(tmp_path / "c.toml", '[datasets.seed]\npreset = "improved"\n'))
    assert cfg.preprocess_params("seed")["units"] == "uV" and cfg.preprocess_params("math")["units"] == "V"
    with pytest.raises(ConfigError, match="units = 'mV' is not allowed; allowed: V, uV"):
        load_config(write(tmp_path / "d.toml", '[preprocess]\nunits = "mV"\n'))


def test_starter_explains_each_improvement():
    from sd_core.config import starter_text

    text = starter_text({})
    for line in ('preset = "original"', 'units = "V"', 'resample = "decimate"', 'hop = "original"',
                 'rounding = "truncate"', "fs = 125.0"):
        assert line in text
    for word in ("uV", "poly", "smallest", "nearest", "improved"):
        assert word in text


def test_every_problem_of_a_file_at_once_with_did_you_mean(tmp_path):
    cfg = write(tmp_path / "sd.toml", '[preprocess]\nnsamp = 2000\nbins = "logg"\nfs = -1.0\n'
                '[pahts]\nraw_root = "x"\n[datasets.sed]\nfs = 200.0\n')
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    lines = str(exc.value).splitlines()
    assert lines[0] == "5 problems:"
    text = "\n".join(lines)
    assert f"{cfg}: [preprocess] unknown key 'nsamp'" in text and "did you mean 'nsamps'?" in text
    assert "[preprocess] bins = 'logg' is not allowed; allowed: log, linear; did you mean 'log'?" in text
    assert "[preprocess] fs " in text
    assert "unknown section [pahts]" in text and "did you mean 'paths'?" in text
    assert "unknown data set 'sed'" in text and "did you mean 'seed'?" in text
    # through the CLI: every line, no traceback, exit 1
    res = run_sd("--config", str(cfg), "config", "show")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert res.stderr.count("did you mean") == 4 and "5 problems:" in res.stderr


def test_every_problem_of_an_experiment_file_at_once(tmp_path):
    exp = write(tmp_path / "exp.toml", '[data]\ndatasets = ["math"]\nbatch = 8\n[model]\nbackbone = "cnn_light"\n'
                '[training]\nepoch = 3\noptimizer = "adamm"\n')
    res = run_sd("train", str(exp), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    err = " ".join(res.stderr.split())
    assert "4 problems:" in err
    assert "[data] unknown key 'batch'" in err and "did you mean 'batch_size'?" in err
    assert "[training] unknown key 'epoch'" in err and "did you mean 'epochs'?" in err
    assert "optimizer = 'adamm' is not allowed; allowed: adamw, adam, sgd; did you mean 'adam'?" in err
    assert "[data] tasks is required" in err
    one = write(tmp_path / "one.toml", '[data]\ndatasets = ["math"]\ntasks = ["gender"]\n[model]\n'
                'backbone = "cnn_lite"\n')
    res = run_sd("train", str(one), cwd=tmp_path)
    assert res.returncode == 1 and "did you mean 'cnn_light'?" in res.stderr
