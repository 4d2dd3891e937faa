"""Plugin loading: isolation of broken plugins, SD_LOAD_PLUGINS, duplicate names."""

from __future__ import annotations

import json

from conftest import make_fake_dist, run_sd

DATASET_PLUGIN = """
from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin
from sd_core.specs import TaskSpec

class D(DatasetPlugin):
    name = {name!r}
    title = "a test data set"

@hookimpl
def sd_datasets():
    return [D()]

@hookimpl
def sd_tasks():
    return [TaskSpec({task!r}, {name!r}, "classification", ("a", "b"))]
"""


def test_five_plugins_listed_with_versions():
    res = run_sd("plugins", "--json")
    assert res.returncode == 0, res.stderr
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    for name in ("sd-math", "sd-parkinsons", "sd-seed", "sd-chbmit", "sd-backbones"):
        assert infos[name]["status"] == "loaded"
        assert infos[name]["version"] == "0.1.0"
    assert infos["sd-core"]["status"] == "builtin"
    assert "balanced_accuracy" in infos["sd-core"]["provides"]["metrics"]
    req = run_sd("plugins", "--requirements").stdout.split()
    assert "sd-math==0.1.0" in req and "sd-core==0.1.0" in req


def test_plugin_raising_on_import_is_isolated(tmp_path):
    make_fake_dist(tmp_path, "sd-broken", "sd_broken", "raise RuntimeError('boom at import')\n")
    res = run_sd("datasets", "--json", extra_path=[tmp_path])
    assert res.returncode == 0, res.stderr
    assert "sd-broken" in res.stderr and "boom at import" in res.stderr
    assert "Traceback" not in res.stderr
    assert {d["dataset"] for d in json.loads(res.stdout)} >= {"math", "seed", "chbmit", "parkinsons"}

    res = run_sd("plugins", "--json", extra_path=[tmp_path])
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert infos["sd-broken"]["status"] == "failed"
    assert "RuntimeError: boom at import" in infos["sd-broken"]["error"]
    assert infos["sd-math"]["status"] == "loaded"
    table = run_sd("plugins", extra_path=[tmp_path]).stdout
    assert "sd-broken" in table and "failed" in table


def test_plugin_raising_in_a_hook_is_isolated(tmp_path):
    make_fake_dist(tmp_path, "sd-flaky", "sd_flaky", """
        from sd_core import hookimpl
        @hookimpl
        def sd_datasets():
            raise ValueError("cannot list")
    """)
    res = run_sd("datasets", "--json", extra_path=[tmp_path])
    assert res.returncode == 0, res.stderr
    assert "sd-flaky" in res.stderr and "cannot list" in res.stderr
    assert "math" in {d["dataset"] for d in json.loads(res.stdout)}


def test_sd_load_plugins_restricts_and_empty_loads_none():
    res = run_sd("datasets", "--json", env={"SD_LOAD_PLUGINS": "sd-math, sd_seed"})
    assert res.returncode == 0, res.stderr
    assert [d["dataset"] for d in json.loads(res.stdout)] == ["math", "seed"]

    res = run_sd("plugins", "--json", env={"SD_LOAD_PLUGINS": ""})
    assert [p["name"] for p in json.loads(res.stdout)] == ["sd-core"]  # built-ins stay
    res = run_sd("datasets", "--json", env={"SD_LOAD_PLUGINS": ""})
    assert json.loads(res.stdout) == []

    res = run_sd("plugins", "--json", env={"SD_LOAD_PLUGINS": "sd-nothere"})
    assert "sd-nothere" in res.stderr


def test_duplicate_dataset_names_both_plugins(tmp_path):
    make_fake_dist(tmp_path, "sd-dup", "sd_dup", DATASET_PLUGIN.format(name="math", task="other"))
    res = run_sd("datasets", extra_path=[tmp_path])
    assert res.returncode == 1
    assert "data set 'math'" in res.stderr
    assert "'sd-math'" in res.stderr and "'sd-dup'" in res.stderr
    assert "Traceback" not in res.stderr
    # leaving one out resolves it
    ok = run_sd("datasets", "--json", extra_path=[tmp_path], env={"SD_LOAD_PLUGINS": "sd-dup"})
    assert ok.returncode == 0 and [d["dataset"] for d in json.loads(ok.stdout)] == ["math"]


def test_duplicate_task_names_both_plugins(tmp_path):
    # a plugin adding a task to another plugin's data set is fine ...
    make_fake_dist(tmp_path / "a", "sd-extra", "sd_extra", """
        from sd_core import hookimpl
        from sd_core.specs import TaskSpec
        @hookimpl
        def sd_tasks():
            return [TaskSpec("rest_quality", "math", "classification", ("0", "1"),
                             ("doing_math", "count_quality"))]
    """)
    res = run_sd("tasks", "--dataset", "math", "--json", extra_path=[tmp_path / "a"])
    assert res.returncode == 0, res.stderr
    owners = {t["task"]: t["plugin"] for t in json.loads(res.stdout)}
    assert owners["rest_quality"] == "sd-extra" and owners["gender"] == "sd-math"
    # ... but registering one that exists is an error naming both
    make_fake_dist(tmp_path / "b", "sd-clash", "sd_clash", """
        from sd_core import hookimpl
        from sd_core.specs import TaskSpec
        @hookimpl
        def sd_tasks():
            return [TaskSpec("gender", "math", "classification", ("F", "M"))]
    """)
    res = run_sd("tasks", extra_path=[tmp_path / "b"])
    assert res.returncode == 1
    assert "task 'math.gender'" in res.stderr and "'sd-math'" in res.stderr and "'sd-clash'" in res.stderr


def test_duplicate_backbone_names_both_plugins(tmp_path):
    code = """
        from sd_core import hookimpl
        from sd_core.specs import BackboneSpec
        @hookimpl
        def sd_backbones():
            return [BackboneSpec("tiny", build=lambda **kw: None)]
    """
    make_fake_dist(tmp_path, "sd-bb-one", "sd_bb_one", code)
    make_fake_dist(tmp_path, "sd-bb-two", "sd_bb_two", code)
    res = run_sd("backbones", extra_path=[tmp_path])
    assert res.returncode == 1
    assert "backbone 'tiny'" in res.stderr and "'sd-bb-one'" in res.stderr and "'sd-bb-two'" in res.stderr


def test_plugin_cli_command_is_added(tmp_path):
    make_fake_dist(tmp_path, "sd-hello", "sd_hello", """
        import click
        from sd_core import hookimpl
        @click.command("hello")
        def hello():
            '''Say hello.'''
            click.echo("hello from a plugin")
        @hookimpl
        def sd_cli_commands():
            return [hello]
    """)
    assert "hello from a plugin" in run_sd("hello", extra_path=[tmp_path]).stdout
    assert "Say hello." in run_sd("--help", extra_path=[tmp_path]).stdout


def test_unknown_names_list_the_allowed_ones():
    res = run_sd("tasks", "--dataset", "nope")
    assert res.returncode == 1
    assert "unknown data set 'nope'" in res.stderr and "chbmit, math, parkinsons, seed" in res.stderr
