"""Meta data sets (sd meta build): weights, the folder, the dataset card, Hugging Face loading,
rebuilds, and training on a weighted set; per-split metadata of processed folders."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import read_rows, run_sd
from layout_data import math_like, parkinsons_like

from sd_core.config import load_config
from sd_core.errors import SdError
from sd_core.meta import double_weighting
from sd_core.meta.build import build_from_config, rebuild
from sd_core.meta.components import resolve_components
from sd_core.meta.config import load_meta_experiment
from sd_core.meta.weights import copies_for, rule_weights
from sd_core.plugins import get_registry

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def rule_shares(rows: list[dict], labels: list[str], cap: float) -> dict[tuple, float]:
    """The rule written out independently: a group of n rows weighs min(n_max / n, cap)."""
    n = Counter((r["dataset"], "_".join(r[x] for x in labels)) for r in rows)
    top = max(n.values())
    mass = {g: k * min(top / k, cap) for g, k in n.items()}
    return {g: m / sum(mass.values()) for g, m in mass.items()}


def shares_of(rows: list[dict], labels: list[str]) -> dict[tuple, float]:
    n = Counter((r["dataset"], "_".join(r[x] for x in labels)) for r in rows)
    return {g: k / len(rows) for g, k in n.items()}


def build(base: Path, toml: str, out: Path, overwrite: bool = False):
    (base / "meta.toml").write_text(toml)
    exp = load_meta_experiment(base / "meta.toml")
    project = load_config(base / "sd.toml")
    registry = get_registry()
    comps = resolve_components(exp["meta"]["components"], exp.base, project, registry, "[meta] components")
    return build_from_config(exp["meta"], comps, out, registry, overwrite)


@pytest.fixture()
def two_sets(tmp_path) -> Path:
    math_like(tmp_path / "math")
    parkinsons_like(tmp_path / "parkinsons")
    (tmp_path / "sd.toml").write_text('[paths]\noutput_root = "."\n')
    return tmp_path


def load_hf(folder: Path, cache: Path, **kw):
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    return datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(cache), **kw)


# -- the weighting rule ----------------------------------------------------------------------

def test_rule_is_inverse_frequency_capped_and_copies_follow_it():
    groups = [("a", "F")] * 40 + [("a", "M")] * 10 + [("b", "F")] * 3
    w = rule_weights(groups, "inverse", 5.0)
    assert w == {("a", "F"): 1.0, ("a", "M"): 4.0, ("b", "F"): 5.0}  # 40/3 capped at 5
    copies = copies_for(groups, w, 1.0)
    assert sum(copies[:40]) == 40 and sum(copies[40:50]) == 40 and sum(copies[50:]) == 15
    half = copies_for(groups, {g: 1.5 for g in w}, 1.0)  # fractions spread evenly over a group
    assert half[:4] == [1, 2, 1, 2] and sum(half[:40]) == 60
    assert rule_weights(groups, "none", 5.0) == {g: 1.0 for g in w}


# -- building --------------------------------------------------------------------------------

def test_build_layout_shares_card_and_byte_identical_rebuild(two_sets):
    base = two_sets
    before = tree(base / "math")
    plan, summary = build(base, '[meta]\ncomponents = ["math", "parkinsons"]\nlabels = ["gender"]\n',
                          base / "out")
    out = base / "out"
    assert tree(base / "math") == before  # the sources are never changed
    meta = read_rows(out / "metadata.csv")
    assert Counter(r["split"] for r in meta) == {"train": 96, "val": 28, "test": 28}
    header = (out / "metadata.csv").read_text().splitlines()[0].split(",")
    assert header[:10] == ["file_name", "split", "dataset", "subject", "gender", "health", "age",
                           "recording", "window", "start"]
    assert header[-3:] == ["source", "weight", "caption"]
    train = read_rows(out / "train-metadata.csv")
    source_train = read_rows(base / "math" / "train-metadata.csv") + read_rows(base / "parkinsons" / "train-metadata.csv")
    want = rule_shares(source_train, ["gender"], 10.0)
    got = shares_of(train, ["gender"])
    assert got.keys() == want.keys() and all(abs(got[g] - want[g]) < 1e-9 for g in want), (got, want)
    assert {r["weight"] for r in train if r["dataset"] == "parkinsons"} == {"1.5"}
    # a row's source is its component's file; the image is a copy of it (not the same file)
    r = next(r for r in train if ".copy1." in r["file_name"])
    assert r["source"].startswith("parkinsons/train/")
    src = base / r["source"]
    assert (out / r["file_name"]).read_bytes() == src.read_bytes()
    assert not os.path.samefile(out / r["file_name"], src)
    assert summary["linked"] == 0 and summary["copied"] + summary["reflinked"] == summary["files"] == 152
    # captions come from the data set plugin's caption (one function for every kind of folder)
    m = next(r for r in train if r["dataset"] == "math" and r["doing_math"] == "1")
    assert m["caption"].endswith("during mental arithmetic")
    # per split: a metadata.csv inside the split folder, file names relative to it
    inside = read_rows(out / "val" / "metadata.csv")
    assert [x["file_name"] for x in inside] == [x["file_name"][4:] for x in read_rows(out / "val-metadata.csv")]
    assert (out / "weights.png").read_bytes()[:4] == b"\x89PNG"
    # the dataset card parses with huggingface_hub
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md").data.to_dict()
    assert card["configs"][0]["data_files"] == [{"split": "train", "path": "train/**"},
                                                 {"split": "validation", "path": "val/**"},
                                                 {"split": "test", "path": "test/**"}]
    feats = {f["name"]: f["dtype"] for f in card["dataset_info"]["features"]}
    assert feats["gender"] == {"class_label": {"names": {"0": "F", "1": "M"}}}
    assert feats["image"] == "image" and feats["weight"] == "float64"
    assert card["license"] == ["cc0-1.0", "odc-by"] and "image-classification" in card["task_categories"]
    text = (out / "README.md").read_text()
    assert "| parkinsons × F | 16 | 1.5 | 24 | 20.00% | 25.00% | 25.00% |" in text
    # a rebuild from meta.json is byte-identical, the ownership manifest included
    rebuild(out, base / "again", get_registry())
    assert tree(out) == tree(base / "again")
    record = json.loads((out / "meta.json").read_text())
    assert record["weighted"] and record["config"]["labels"] == ["gender"]


def test_meta_set_loads_with_datasets_split_by_split(two_sets, tmp_path):
    base = two_sets
    build(base, '[meta]\ncomponents = ["math", "parkinsons"]\nlabels = ["gender"]\n', base / "out")
    ds = load_hf(base / "out", tmp_path / "c1")
    assert {k: ds[k].num_rows for k in ds} == {"train": 96, "validation": 28, "test": 28}
    for split in ds:
        cols = set(ds[split].column_names)
        assert {"image", "gender", "health", "age", "dataset", "source", "weight", "caption"} <= cols
    assert sorted(set(ds["validation"]["dataset"])) == ["math", "parkinsons"]
    # the card's configs, and its features (class labels) as load_dataset's features
    import datasets
    from huggingface_hub import DatasetCard

    by_card = datasets.load_dataset(str(base / "out"), cache_dir=str(tmp_path / "c2"))
    assert by_card["test"].num_rows == 28
    card = DatasetCard.load(base / "out" / "README.md")
    feats = datasets.Features._from_yaml_list(card.data.dataset_info["features"])
    typed = load_hf(base / "out", tmp_path / "c3", features=feats)
    assert typed["train"].features["gender"].names == ["F", "M"]


def test_size_factor_unweighted_splits_and_copies(two_sets):
    base = two_sets
    plan, _ = build(base, '[meta]\ncomponents = ["math", "parkinsons"]\nlabels = ["health"]\n'
                    'size = 40\nsplits = ["train", "val"]\nlink = "copy"\nmax_sampling_weight = 1.2\n',
                    base / "out")
    out = base / "out"
    assert not (out / "test").exists() and not (out / "test-metadata.csv").exists()
    train = read_rows(out / "train-metadata.csv")
    assert 38 <= len(train) <= 42
    val = read_rows(out / "val-metadata.csv")
    assert len(val) == 28 and {r["weight"] for r in val} == {"1.0"}
    # math × H: 48 rows, weight 1; parkinsons × H and × PD: 16 rows, weight min(3, 1.2)
    diag = {(d["dataset"], d["class"]): d for d in plan.diagnostics["train"]}
    assert diag[("parkinsons", "PD")]["weight"] == 1.2
    r = train[0]
    assert not os.path.samefile(out / r["file_name"], base / r["source"])  # link = "copy"


def test_overwrite_deletes_only_what_sd_wrote_and_refuses_without(two_sets):
    base = two_sets
    toml = '[meta]\ncomponents = ["math", "parkinsons"]\n'
    build(base, toml, base / "out")
    (base / "out" / "notes.txt").write_text("mine")
    with pytest.raises(SdError, match="already holds a meta data set"):
        build(base, toml, base / "out")
    build(base, toml.replace("]\n", "]\nsplits = [\"train\"]\n", 1), base / "out", overwrite=True)
    assert (base / "out" / "notes.txt").read_text() == "mine"
    assert not (base / "out" / "val").exists()
    (base / "out" / "train" / "metadata.csv").write_text("changed by hand")
    with pytest.raises(SdError, match="changed since sd wrote it"):
        build(base, toml, base / "out", overwrite=True)
    with pytest.raises(SdError, match="overlap"):
        build(base, toml, base / "math" / "meta")


def test_config_errors_name_the_key(two_sets):
    base = two_sets
    for toml, match in [('[meta]\ncomponents = ["nowhere"]\n', "neither an installed data set"),
                        ('[meta]\ncomponents = ["math"]\nlabels = ["colour"]\n', "colour"),
                        ('[meta]\ncomponents = ["math"]\nweighting = "magic"\n', "weighting"),
                        ('[meta]\ncomponents = ["math"]\nweighted_splits = ["test"]\nsplits = ["train"]\n',
                         "weighted_splits")]:
        with pytest.raises(SdError, match=match):
            build(base, toml, base / "out")


# -- reading a meta set for training -----------------------------------------------------------

def test_training_reads_a_meta_set_and_does_not_weigh_twice(two_sets):
    from sd_core.data.select import read_rows as select_rows
    from sd_core.data.sources import Source

    base = two_sets
    build(base, '[meta]\ncomponents = ["math", "parkinsons"]\n', base / "out")
    rows = select_rows([Source(base / "out", "math"), Source(base / "out", "parkinsons")], "train")
    assert len(rows) == 96 and {r["dataset"] for r in rows[:48]} == {"math"}
    assert "weighted by sd meta build" in double_weighting([base / "out"], "train")
    assert double_weighting([base / "out"], "val") is None  # val is not weighted
    assert double_weighting([base / "math"], "train") is None


def test_sd_train_warns_on_a_weighted_meta_set(two_sets, tmp_path):
    base = two_sets
    build(base, '[meta]\ncomponents = ["math", "parkinsons"]\n', base / "out")
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'[data]\ndatasets = ["math", "parkinsons"]\ntasks = ["gender"]\n'
                   f'paths = {{ math = "{base / "out"}", parkinsons = "{base / "out"}" }}\n'
                   f'cache_mb = 0\n[model]\nbackbone = "cnn_light"\n'
                   f'[training]\nmax_steps = 1\nepochs = 1\neval_strategy = "none"\n')
    res = run_sd("train", str(cfg), "--out", str(tmp_path / "run"), env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "balanced sampling is not applied on top of it" in " ".join(res.stderr.split())


def test_diffusion_training_does_not_weigh_a_weighted_meta_set_twice(two_sets, tmp_path, capsys):
    from sd_core.diffusion.config import load_diffusion_experiment
    from sd_core.diffusion.data import load_training_data

    base = two_sets
    build(base, '[meta]\ncomponents = ["math", "parkinsons"]\n', base / "out")
    cfg = tmp_path / "diffusion.toml"
    cfg.write_text(f'[data]\ndatasets = ["math", "parkinsons"]\nconditions = ["gender"]\n'
                   f'paths = {{ math = "{base / "out"}", parkinsons = "{base / "out"}" }}\n'
                   f'balanced = "gender"\nimage_size = 16\ncache_mb = 0\n')
    exp = load_diffusion_experiment(cfg)
    rows, _, _, weights = load_training_data(exp, load_config(base / "sd.toml"), get_registry())
    assert len(rows) == 96 and weights is None
    assert "not applied on top of it" in " ".join(capsys.readouterr().err.split())


# -- the command line ------------------------------------------------------------------------

def test_cli_build_rebuild_and_starter(two_sets, tmp_path):
    base = two_sets
    (base / "meta.toml").write_text('[meta]\ncomponents = ["math", "parkinsons"]\nlabels = ["gender"]\n')
    res = run_sd("--config", str(base / "sd.toml"), "meta", "build", str(base / "meta.toml"),
                 "--out", str(base / "out"))
    assert res.returncode == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "train: weights per data set × class" in out and "parkinsons" in out
    assert "152 copies" in out or "152 reflinks" in out
    res = run_sd("meta", "rebuild", str(base / "out"), "--out", str(base / "again"))
    assert res.returncode == 0, res.stderr
    assert tree(base / "out") == tree(base / "again")
    (base / "math" / "metadata.csv").write_text((base / "math" / "metadata.csv").read_text() + "\n")
    res = run_sd("meta", "rebuild", str(base / "out"), "--out", str(base / "third"))
    assert res.returncode == 1 and "changed since the meta set was built" in res.stderr
    res = run_sd("init", "--experiment", "meta", str(tmp_path / "m.toml"))
    assert res.returncode == 0, res.stderr
    assert load_meta_experiment(tmp_path / "m.toml")["meta"]["weighting"] == "inverse"


# -- the four demo data sets -----------------------------------------------------------------

@pytest.mark.slow
def test_meta_set_of_the_four_demo_data_sets(tmp_path):
    """Native demo files of every data set, preprocessed small, combined and weighted by data
    set × gender; the shares after weighting follow the rule, every folder loads per split."""
    from sd_core.cli.demo import DEMO_PREPROCESS
    from sd_core.preprocess import preprocess_dataset

    registry = get_registry()
    names = ("math", "parkinsons", "seed", "chbmit")
    for name in names:
        plugin = registry.datasets[name]
        plugin.write_demo(tmp_path / "raw" / name, seed=0)
        options = {k: o.default for k, o in plugin.options.items()}
        res = preprocess_dataset(plugin, tmp_path / "raw" / name, tmp_path / "processed" / name,
                                 DEMO_PREPROCESS, list(plugin.channels), options)
        assert not res.errors, res.errors
    (tmp_path / "sd.toml").write_text('[paths]\noutput_root = "processed"\n')
    plan, _ = build(tmp_path, '[meta]\ncomponents = ["math", "parkinsons", "seed", "chbmit"]\n'
                    'labels = ["gender"]\nmax_sampling_weight = 4.0\n', tmp_path / "meta")
    out = tmp_path / "meta"
    source = [r for n in names for r in read_rows(tmp_path / "processed" / n / "train-metadata.csv")]
    n = Counter((r["dataset"], r["gender"]) for r in source)
    top = max(n.values())
    made = Counter((r["dataset"], r["gender"]) for r in read_rows(out / "train-metadata.csv"))
    assert made.keys() == n.keys()
    for g, k in n.items():  # floor(n · w) or one more copies, w = min(n_max / n, 4)
        assert abs(made[g] - k * min(top / k, 4.0)) < 1, (g, made[g], k)
    want, total = rule_shares(source, ["gender"], 4.0), sum(made.values())
    for g in n:
        assert abs(made[g] / total - want[g]) < 1.5 / total * len(n), (g, made[g] / total, want[g])
    print({f"{g[0]}×{g[1]}": (round(k / len(source), 3), round(made[g] / total, 3)) for g, k in sorted(n.items())})
    # every folder loads per split with its label columns: the four processed ones and the meta set
    own = {"math": "doing_math", "parkinsons": "health", "seed": "emotion", "chbmit": "seizure"}
    for name in names:
        ds = load_hf(tmp_path / "processed" / name, tmp_path / f"cache-{name}")
        assert list(ds) == ["train", "validation", "test"]
        for split in ds:
            assert {"gender", "health", "age", own[name], "caption"} <= set(ds[split].column_names)
    ds = load_hf(out, tmp_path / "cache-meta")
    assert {k: ds[k].num_rows for k in ds} == {"train": len(plan.rows["train"]), "validation": len(plan.rows["val"]),
                                               "test": len(plan.rows["test"])}
    for split in ds:
        assert {"gender", "health", "age", "emotion", "seizure", "doing_math", "weight", "source"} <= set(
            ds[split].column_names)
    from huggingface_hub import DatasetCard

    card = DatasetCard.load(out / "README.md")
    assert card.data.license == ["cc0-1.0", "odc-by", "other"]
    assert "### seed: preprocessing" in card.text and '"nsamps": 500' in card.text
    rebuild(out, tmp_path / "again", registry)
    assert tree(out) == tree(tmp_path / "again")


def test_editing_a_mix_image_in_place_leaves_the_component_alone(two_sets):
    """The default places copies: a user who saves over a mix image (PIL, same path) changes
    only the mix; hard links are an explicit choice, and the card warns of them (issue 31)."""
    from PIL import Image

    base = two_sets
    before = tree(base / "math")
    _, summary = build(base, '[meta]\ncomponents = ["math"]\nlabels = ["gender"]\n', base / "mix")
    for rel in [r["file_name"] for r in read_rows(base / "mix" / "metadata.csv")]:
        Image.new("L", (32, 32), 255).save(base / "mix" / rel)
    assert tree(base / "math") == before
    assert "hard links" not in (base / "mix" / "README.md").read_text()
    _, summary = build(base, '[meta]\ncomponents = ["math"]\nlabels = ["gender"]\nlink = "hardlink"\n',
                       base / "linked")
    assert summary["linked"] == summary["files"] > 0
    row = read_rows(base / "linked" / "metadata.csv")[0]
    assert os.path.samefile(base / "linked" / row["file_name"], base / row["source"])
    assert "**The images are hard links to the components' files**" in (base / "linked" / "README.md").read_text()
