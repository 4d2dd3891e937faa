"""The dataset-plugin contract checked at load: the columns a task reads, preprocess_defaults;
events handed from read_raw to label_windows."""

from __future__ import annotations

import json

import numpy as np

from conftest import make_fake_dist, run_sd
from layout_data import math_like

EXTRA_TASKS = """
from sd_core import hookimpl
from sd_core.specs import TaskSpec

@hookimpl
def sd_tasks():
    return [TaskSpec("rest_gender", "math", "classification", ("0_F", "0_M", "1_F", "1_M"),
                     ("doing_maths", "gender")),
            TaskSpec("rest_quality", "math", "classification", ("0_0", "0_1", "1_0", "1_1"),
                     ("doing_math", "count_quality")),
            TaskSpec("by_subject", "math", "classification", ("a", "b"), ("subject",))]
"""


def test_task_reading_a_column_its_data_set_lacks_is_refused_at_load(tmp_path):
    make_fake_dist(tmp_path, "sd-mathtasks", "sd_mathtasks", EXTRA_TASKS)
    res = run_sd("tasks", "--dataset", "math", "--json", extra_path=[tmp_path])
    assert res.returncode == 0, res.stderr
    err = " ".join(res.stderr.split())
    assert ("warning: hook sd_tasks of plugin 'sd-mathtasks': task 'math.rest_gender' reads column "
            "'doing_maths', which data set 'math' does not have; allowed: doing_math, count_quality "
            "(its columns), file_name, split, dataset, subject, gender, health, age") in err
    assert "continuing without it" in err and err.count("warning:") == 1
    tasks = {t["task"]: t for t in json.loads(res.stdout)}
    assert "rest_gender" not in tasks  # refused; the plugin's valid tasks stay
    assert tasks["rest_quality"]["columns"] == ["doing_math", "count_quality"]
    assert tasks["by_subject"]["plugin"] == "sd-mathtasks"
    # sd plugins shows the plugin as failed, with the reason
    res = run_sd("plugins", "--json", extra_path=[tmp_path])
    info = {p["name"]: p for p in json.loads(res.stdout)}["sd-mathtasks"]
    assert info["status"] == "failed" and info["error"].startswith("sd_tasks: task 'math.rest_gender' reads")
    # the table shows the columns each task reads
    res = run_sd("tasks", "--dataset", "math", extra_path=[tmp_path])
    assert "columns" in res.stdout and "doing_math + count_quality" in res.stdout
    # sd train names it as unknown rather than failing later on empty targets
    exp = tmp_path / "exp.toml"
    math_like(tmp_path / "math")
    exp.write_text(f'[data]\ndatasets = ["math"]\ntasks = ["rest_gender"]\npaths = {{ math = "{tmp_path / "math"}" }}\n')
    res = run_sd("train", str(exp), "--out", str(tmp_path / "run"), extra_path=[tmp_path], cwd=tmp_path)
    assert res.returncode == 1 and "unknown task 'rest_gender' of data set 'math'" in res.stderr


DEFAULTS_PLUGIN = """
from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin

class Good(DatasetPlugin):
    name = "natural"
    preprocess_defaults = {"fs": 250.0, "nsamps": 1000}

class Bad(DatasetPlugin):
    name = "unnatural"
    preprocess_defaults = {"fs": 250.0, "nsamp": 1000}

class Worse(DatasetPlugin):
    name = "negative"
    preprocess_defaults = {"overlap": 1.5}

@hookimpl
def sd_datasets():
    return [Good(), Bad(), Worse()]
"""


def test_preprocess_defaults_are_checked_at_load(tmp_path):
    make_fake_dist(tmp_path, "sd-natural", "sd_natural", DEFAULTS_PLUGIN)
    res = run_sd("datasets", "--json", extra_path=[tmp_path])
    assert res.returncode == 0, res.stderr
    names = {d["dataset"] for d in json.loads(res.stdout)}
    assert "natural" in names and "unnatural" not in names and "negative" not in names
    err = " ".join(res.stderr.split())
    assert ("hook sd_datasets of plugin 'sd-natural': data set 'unnatural' has preprocess_defaults: "
            "[preprocess] unknown key 'nsamp'; allowed:") in err
    assert "data set 'negative' has preprocess_defaults: [preprocess] overlap must be at least 0" in err


def test_row_columns_are_the_layouts():
    from sd_core.preprocess.layout import CORE_COLUMNS, LAST_COLUMNS
    from sd_core.specs import ROW_COLUMNS

    assert ROW_COLUMNS == (*CORE_COLUMNS, *LAST_COLUMNS)


def test_events_come_from_the_opened_file(tmp_path, monkeypatch):
    import mne

    from sd_core.dataset import DatasetPlugin, Event, Recording, remember_events
    from sd_core.signals.edf import export_edf

    path = tmp_path / "rec.edf"
    x = np.random.default_rng(0).normal(0, 1e-5, (2, 250 * 20))
    export_edf(path, x, ["EEG Cz", "EEG Pz"], 250.0, events=[(12.0, 2.0, "b"), (2.5, 3.0, "a")])
    calls = []

    class Own(DatasetPlugin):
        def read_raw(self, recording, options):
            calls.append(recording.id)
            raw = mne.io.read_raw_edf(recording.path, preload=False, verbose="error")
            remember_events(recording, raw)
            return raw

    plugin, rec = Own(), Recording("r", path)
    plugin.read_raw(rec, {})
    events = plugin.events(rec)
    assert events == [Event(2.5, 3.0, "a"), Event(12.0, 2.0, "b")] and calls == ["r"]
    assert events[0].stop == 5.5 and events[0].overlap(4.0, 8.0) == 1.5 and events[1].overlap(0, 4) == 0
    # outside preprocessing (nothing opened yet) the plugin opens the file itself
    fresh = Recording("s", path)
    assert DatasetPlugin().events(fresh) == events
    assert Own().events(Recording("t", path)) == events and calls == ["r", "t"]
    # a recording without annotations has no events
    bare = tmp_path / "bare.edf"
    export_edf(bare, x, ["EEG Cz", "EEG Pz"], 250.0)
    assert DatasetPlugin().events(Recording("u", bare)) == []


def test_preprocess_defaults_sit_between_sd_defaults_and_sd_toml(tmp_path):
    from sd_core.config import defaults, load_config

    class Natural:
        preprocess_defaults = {"fs": 128.0, "nsamps": 512, "overlap": 0.25}

    base = defaults()["preprocess"]
    cfg = load_config()  # no file: the plugin's values replace sd's defaults
    p = cfg.preprocess_params("math", Natural())
    assert (p["fs"], p["nsamps"], p["overlap"], p["resolution"]) == (128.0, 512, 0.25, base["resolution"])
    assert cfg.preprocess_params("math")["nsamps"] == base["nsamps"]  # sd-math declares none
    toml = tmp_path / "sd.toml"
    toml.write_text("[preprocess]\noverlap = 0.5\n\n[datasets.math]\nfs = 250.0\n")
    cfg = load_config(toml)  # sd.toml has the last word: [preprocess], then [datasets.<name>]
    p = cfg.preprocess_params("math", Natural())
    assert (p["fs"], p["nsamps"], p["overlap"]) == (250.0, 512, 0.5)
