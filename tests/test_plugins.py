"""Plugin loading: isolation of broken plugins, SD_LOAD_PLUGINS, duplicate names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_fake_dist, run_sd

DATASET_PLUGIN = """
from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin
from sd_core.specs import TaskSpec

class D(DatasetPlugin):
    name = {name!r}
    title = "a test data set"
    columns = ({task!r},)

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


# -- plugins that misbehave (issue 11, finding 5) ----------------------------------------------

LISTINGS = (("--help",), ("plugins", "--json"), ("plugins",), ("datasets", "--json"), ("tasks", "--json"),
            ("backbones",), ("metrics",))


def _plugins_json(extra_path) -> dict:
    res = run_sd("plugins", "--json", extra_path=extra_path)
    assert res.returncode == 0, res.stderr
    return {p["name"]: p for p in json.loads(res.stdout)}


def _every_listing_works(extra_path, warning: str) -> None:
    """Every listing command exits 0 without a traceback; the ones that call the broken hook
    print ``warning``; the shipped plugins keep working."""
    for args in LISTINGS:
        res = run_sd(*args, extra_path=extra_path)
        assert res.returncode == 0, (args, res.stderr)
        assert "Traceback" not in res.stderr, (args, res.stderr)
        if args[0] == "plugins":
            assert warning in res.stderr, (args, res.stderr)
        if args == ("--help",):
            assert "preprocess" in res.stdout and "datasets" in res.stdout
        if args[0] == "datasets":
            assert {d["dataset"] for d in json.loads(res.stdout)} >= {"math", "seed", "chbmit", "parkinsons"}
        if args[0] == "tasks":
            assert ("math", "gender") in {(t["dataset"], t["task"]) for t in json.loads(res.stdout)}


def test_plugin_calling_sys_exit_at_import_is_isolated(tmp_path):
    make_fake_dist(tmp_path, "sd-quits", "sd_quits", "import sys\nsys.exit('plugin called sys.exit')\n")
    warning = "warning: plugin 'sd-quits' failed to load (called sys.exit('plugin called sys.exit')); continuing without it"
    for args in LISTINGS:
        res = run_sd(*args, extra_path=[tmp_path])
        assert res.returncode == 0, (args, res.stderr)
        assert warning in res.stderr.splitlines(), (args, res.stderr)
    assert "preprocess" in run_sd("--help", extra_path=[tmp_path]).stdout
    infos = _plugins_json([tmp_path])
    assert infos["sd-quits"]["status"] == "failed"
    assert infos["sd-quits"]["error"] == "called sys.exit('plugin called sys.exit')"
    assert infos["sd-math"]["status"] == "loaded"
    # sys.exit in a hook is isolated too
    make_fake_dist(tmp_path / "b", "sd-quits-later", "sd_quits_later", """
        import sys
        from sd_core import hookimpl
        @hookimpl
        def sd_datasets():
            sys.exit(2)
    """)
    res = run_sd("datasets", "--json", extra_path=[tmp_path / "b"])
    assert res.returncode == 0, res.stderr
    assert "hook sd_datasets of plugin 'sd-quits-later' raised called sys.exit(2)" in res.stderr
    assert "math" in {d["dataset"] for d in json.loads(res.stdout)}


BAD_RETURNS = {
    "str": ("sd_datasets", "return 'math'", "returned str, expected a list of DatasetPlugin"),
    "none": ("sd_datasets", "return None", "returned None, expected a list of DatasetPlugin"),
    "none-item": ("sd_datasets", "return [None]",
                  "returned a list holding None (item 0), expected a list of DatasetPlugin"),
    "class": ("sd_datasets", "return [D]", "returned a list holding the class D, not an instance "
              "(item 0), expected a list of DatasetPlugin (return D())"),
    "unnamed": ("sd_datasets", "return [DatasetPlugin()]",
                "returned a DatasetPlugin with name '' (item 0), expected a non-empty string"),
    "task-dict": ("sd_tasks", "return {'gender': 'math'}", "returned dict, expected a list of TaskSpec"),
    "backbone-str": ("sd_backbones", "return ['tiny']",
                     "returned a list holding str (item 0), expected a list of BackboneSpec"),
    "metric-class": ("sd_metrics", "return [MetricSpec]", "returned a list holding the class MetricSpec, "
                     "not an instance (item 0), expected a list of MetricSpec (return MetricSpec())"),
    "command-str": ("sd_cli_commands", "return 'hello'", "returned str, expected a list of click.Command"),
    "command-class": ("sd_cli_commands", "return [click.Command]",
                      "returned a list holding the class Command, not an instance (item 0), "
                      "expected a list of click.Command (return Command())"),
}


@pytest.mark.parametrize("case", sorted(BAD_RETURNS))
def test_hook_returning_the_wrong_thing_is_isolated(tmp_path, case):
    hook, body, problem = BAD_RETURNS[case]
    make_fake_dist(tmp_path, "sd-odd", "sd_odd", f"""
        import click
        from sd_core import hookimpl
        from sd_core.dataset import DatasetPlugin
        from sd_core.specs import MetricSpec
        class D(DatasetPlugin):
            name = "odd"
        @hookimpl
        def {hook}():
            {body}
    """)
    warning = f"warning: hook {hook} of plugin 'sd-odd' {problem}; continuing without its contribution"
    _every_listing_works([tmp_path], warning)
    infos = _plugins_json([tmp_path])
    assert infos["sd-odd"]["status"] == "failed"
    assert infos["sd-odd"]["error"] == f"{hook} {problem}"
    assert infos["sd-math"]["status"] == "loaded"
    table = run_sd("plugins", extra_path=[tmp_path]).stdout
    assert "sd-odd" in table and "failed" in table
    if hook == "sd_cli_commands":  # the broken hook is the one `sd --help` calls
        assert warning in run_sd("--help", extra_path=[tmp_path]).stderr


def test_a_hook_without_hookimpl_is_reported_naming_the_plugin(tmp_path):
    """pluggy skips a function without the marker: the plugin would load and add nothing (issue 31)."""
    make_fake_dist(tmp_path, "sd-unmarked", "sd_unmarked", """
        from sd_core.dataset import DatasetPlugin
        class D(DatasetPlugin):
            name = "unmarked"
        def sd_datasets():
            return [D()]
    """)
    res = run_sd("datasets", extra_path=[tmp_path])
    assert res.returncode == 0 and "unmarked" not in res.stdout
    assert ("warning: plugin 'sd-unmarked' defines sd_datasets without @hookimpl, so sd never calls it; "
            "decorate it with @sd_core.hookimpl") in res.stderr.splitlines(), res.stderr


def test_misspelt_hook_is_reported_naming_the_plugin(tmp_path):
    make_fake_dist(tmp_path, "sd-typo", "sd_typo", """
        from sd_core import hookimpl
        from sd_core.dataset import DatasetPlugin
        class D(DatasetPlugin):
            name = "typo"
        @hookimpl
        def sd_dataset():
            return [D()]
    """)
    warning = ("warning: plugin 'sd-typo' failed to load (unknown hook sd_dataset, did you mean "
               "sd_datasets?); continuing without it")
    for args in LISTINGS:
        res = run_sd(*args, extra_path=[tmp_path])
        assert res.returncode == 0, (args, res.stderr)
        assert warning in res.stderr.splitlines(), (args, res.stderr)
    infos = _plugins_json([tmp_path])
    assert infos["sd-typo"]["status"] == "failed"
    assert infos["sd-typo"]["error"] == "unknown hook sd_dataset, did you mean sd_datasets?"
    assert infos["sd-math"]["status"] == "loaded"
    # a hook only a newer sd defines, marked optional, is fine
    make_fake_dist(tmp_path / "b", "sd-newer", "sd_newer", """
        from sd_core import hookimpl
        from sd_core.dataset import DatasetPlugin
        class D(DatasetPlugin):
            name = "newer"
        @hookimpl
        def sd_datasets():
            return [D()]
        @hookimpl(optionalhook=True)
        def sd_feature_extractors():
            return []
    """)
    res = run_sd("datasets", "--json", extra_path=[tmp_path / "b"])
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert "newer" in {d["dataset"] for d in json.loads(res.stdout)}
    assert _plugins_json([tmp_path / "b"])["sd-newer"]["status"] == "loaded"


def test_name_clashes_are_failures_in_sd_plugins(tmp_path):
    make_fake_dist(tmp_path, "sd-dup", "sd_dup", DATASET_PLUGIN.format(name="math", task="other"))
    clash = "data set 'math' is registered by both 'sd-dup' and 'sd-math'"
    res = run_sd("plugins", "--json", extra_path=[tmp_path])
    assert res.returncode == 0, res.stderr
    assert f"warning: {clash}; uninstall one of them or leave one out with SD_LOAD_PLUGINS" in res.stderr
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert infos["sd-dup"]["status"] == "failed" and infos["sd-dup"]["error"] == clash
    assert infos["sd-math"]["status"] == "failed" and infos["sd-math"]["error"] == clash
    assert infos["sd-seed"]["status"] == "loaded"
    table = run_sd("plugins", extra_path=[tmp_path])
    assert table.returncode == 0
    assert [line.split("│")[3].strip() for line in table.stdout.splitlines()
            if line.startswith("│ sd-dup ") or line.startswith("│ sd-math ")] == ["failed", "failed"]
    # the commands that need the clashing names still stop, naming both
    assert run_sd("datasets", extra_path=[tmp_path]).returncode == 1
    assert run_sd("backbones", extra_path=[tmp_path]).returncode == 0


def test_command_name_clash_is_a_failure_in_sd_plugins(tmp_path):
    make_fake_dist(tmp_path, "sd-cmd", "sd_cmd", """
        import click
        from sd_core import hookimpl
        @click.command("datasets")
        def datasets():
            click.echo("not the real one")
        @hookimpl
        def sd_cli_commands():
            return [datasets]
    """)
    res = run_sd("--help", extra_path=[tmp_path])
    assert res.returncode == 0
    assert res.stderr.splitlines() == [
        "warning: plugin 'sd-cmd' adds command 'datasets', which exists (by sd); ignored"]
    info = _plugins_json([tmp_path])["sd-cmd"]
    assert info["status"] == "failed"
    assert info["error"] == "sd_cli_commands: command 'datasets' exists already (by sd); ignored"
    assert "not the real one" not in run_sd("datasets", extra_path=[tmp_path]).stdout


# -- check_picklable: data sets that cannot go to worker processes --------------------------

UNPICKLABLE = """
from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin

class Lam(DatasetPlugin):
    name = "lam"
    def __init__(self):
        self.label_of = lambda row: row["x"]

class Fh(DatasetPlugin):
    name = "fh"
    def __init__(self):
        self.log = open(__file__)

@hookimpl
def sd_datasets():
    return [Lam(), Fh()]
"""


@pytest.fixture
def fresh_registry():
    from sd_core.plugins import reset_registry

    reset_registry()
    yield
    reset_registry()


def test_check_picklable_names_plugin_data_set_and_attribute(tmp_path, monkeypatch, fresh_registry):
    from sd_core.errors import PluginError
    from sd_core.plugins import check_picklable, get_registry

    make_fake_dist(tmp_path, "sd-unpicklable", "sd_unpicklable", UNPICKLABLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = get_registry()
    with pytest.raises(PluginError) as err:
        check_picklable(reg.dataset("lam"))
    msg = str(err.value)
    assert msg.startswith("data set 'lam' of plugin 'sd-unpicklable' cannot be sent to worker processes "
                          "(attribute 'label_of': ")
    assert "<lambda>" in msg and "use --workers 1" in msg
    with pytest.raises(PluginError, match=r"data set 'fh' of plugin 'sd-unpicklable' cannot be sent to "
                                          r"worker processes \(attribute 'log': TypeError: cannot pickle "
                                          r"'_io.TextIOWrapper' object\); use --workers 1"):
        check_picklable(reg.dataset("fh"))
    # every shipped data set, and its subjects, can go to workers
    for name in ("math", "seed", "chbmit", "parkinsons"):
        check_picklable(reg.dataset(name))


def test_check_picklable_subjects_and_classes_defined_in_functions():
    from sd_core.dataset import DatasetPlugin, Recording, Subject
    from sd_core.errors import PluginError
    from sd_core.plugins import check_picklable

    def make():
        class Local(DatasetPlugin):
            name = "local"
        return Local()

    with pytest.raises(PluginError, match=r"data set 'local' of plugin 'sd-x' cannot be sent to worker "
                                          r"processes \(AttributeError: Can't pickle local object"):
        check_picklable(make(), plugin="sd-x")

    plugin = DatasetPlugin()
    plugin.name = "demo"
    ok = Subject("S01", {"gender": "F"}, [Recording("r1", Path("a.edf"))])
    bad = Subject("S02", {"gender": "M"}, [Recording("r1", Path("b.edf"), extra={"f": lambda: 0})])
    check_picklable(plugin, [ok], plugin="sd-x")
    with pytest.raises(PluginError, match=r"subject 'S02' of data set 'demo' \(plugin 'sd-x'\) cannot be "
                                          r"sent to worker processes \(attribute 'recordings': .*\); "
                                          r"use --workers 1"):
        check_picklable(plugin, [ok, bad], plugin="sd-x")


def test_every_hook_spec_says_what_its_items_are():
    """A new hook spec needs an entry in HOOK_ITEM_TYPES (so its returns are checked) and, unless
    it adds commands, in UNIQUE_NAMES (so name clashes are found). Entries may come before their
    spec."""
    import importlib

    import pluggy

    from sd_core import PROJECT
    from sd_core.plugins import hookspecs
    from sd_core.plugins import HOOK_ITEM_TYPES, UNIQUE_NAMES

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    specs = {n for n, h in vars(pm.hook).items() if not n.startswith("_") and h.has_spec()}
    assert specs <= set(HOOK_ITEM_TYPES)
    assert specs - {"sd_cli_commands"} <= set(UNIQUE_NAMES)
    for hook in specs:
        module, cls = HOOK_ITEM_TYPES[hook]
        assert isinstance(getattr(importlib.import_module(module), cls, None), type), hook
