"""`sd evaluate`: metric maths, band geometry, the floors against noise and shuffled labels,
memorisation, band-power shifts, determinism, utility, plugin hooks and the CLI outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_fake_dist, run_sd
from eval_data import PARAMS, SIZE, copies_set, generated_set, noise_set, real_set
from sd_core.evaluate import fidelity
from sd_core.evaluate.bandpower import band_features, geometry
from sd_core.evaluate.report import write_outputs
from sd_core.errors import SdError
from sd_core.evaluate.run import Options, evaluate

#: tiny classifiers: a few steps of a small CNN at 32×32
QUICK = {"batch_size": 16, "options": {"channels": [4, 8], "kernels": [3, 3], "hidden": [32], "pool_size": 4},
         "embedding_dim": 16}


pytestmark = pytest.mark.usefixtures("torch_one_thread")  # see conftest


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval")
    real = real_set(root / "real")
    return {"real": real, "good": generated_set(root / "good"),
            "shuffled": generated_set(root / "shuffled", labels="shuffled"),
            "noise": noise_set(root / "noise"), "copies": copies_set(root / "copies", real),
            "shifted": generated_set(root / "shifted", shift=("alpha", 30.0)), "root": root}


@pytest.fixture(scope="module")
def results(sets) -> dict[str, dict]:
    """One evaluation per generated set (no utility); the classifier is trained once."""
    out = {}
    first = evaluate(sets["real"], sets["good"], sets["root"] / "out-good",
                     Options(skip_utility=True, steps=60, recipe=QUICK))
    out["good"] = first
    clf = Path(first["result"]["classifier"]["run"])
    for name in ("shuffled", "noise", "copies", "shifted"):
        out[name] = evaluate(sets["real"], sets[name], sets["root"] / f"out-{name}",
                             Options(skip_utility=True, classifier=clf, recipe=QUICK))
    return out


# -- maths ----------------------------------------------------------------------------------

def test_fid_kid_prdc_on_known_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(600, 4))
    b = rng.normal(size=(600, 4))
    shifted = b + np.array([2.0, 0, 0, 0])
    assert fidelity.fid(a, b)["fid"] < 0.1
    assert fidelity.fid(a, shifted)["fid"] == pytest.approx(4.0, abs=0.4)  # |Δμ|² with equal covariances
    same, far = fidelity.kid(a, b), fidelity.kid(a, shifted)
    assert abs(same["kid"]) < 3 * same["kid_se"] + 1e-3 and far["kid"] > 10 * far["kid_se"] > 0
    p = fidelity.prdc(a, b)
    assert p["precision"] > 0.9 and p["recall"] > 0.9 and 0.8 < p["density"] < 1.2 and p["coverage"] > 0.9
    q = fidelity.prdc(a, b + 3.0)
    assert q["precision"] < 0.5 and q["coverage"] < 0.5
    # generated points all in one spot: precise, but no diversity
    collapsed = fidelity.prdc(a, np.zeros((50, 4)) + 0.01 * rng.normal(size=(50, 4)))
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.2 and collapsed["coverage"] < 0.2
    assert np.isnan(fidelity.prdc(a[:4], b)["precision"])  # too few for k = 5


def test_band_geometry_reads_frequencies_and_strips():
    geo = geometry(PARAMS, SIZE)
    f = geo.freqs
    assert np.isnan(f[-1])  # bottom row: DC
    assert f[-2] == pytest.approx(0.001 * 125) and f[0] == pytest.approx(62.5)
    assert np.all(np.diff(f[:-1]) < 0)  # frequency falls from top to bottom
    assert geo.bands == ("delta", "theta", "alpha", "beta", "gamma")
    assert geo.strip_cols.shape == (4, SIZE) and np.allclose(geo.strip_cols.sum(1), 1)
    # one bright alpha row in strip 2 only shows in that feature
    img = np.zeros((1, SIZE, SIZE), np.uint8)
    alpha_rows = np.flatnonzero(geo.band_rows[geo.bands.index("alpha")])
    img[0, alpha_rows, 16:24] = 200
    feats = band_features(img, geo).reshape(5, 4)
    assert feats[2, 2] == pytest.approx(200) and feats.sum() == pytest.approx(200)
    # seen at half size, the same image gives the same band power
    half = geometry(PARAMS, 16)
    assert half.bands == geo.bands


# -- the checks of the issue ------------------------------------------------------------------

@pytest.mark.slow
def test_real_floor_beats_noise_and_good_beats_noise(results):
    good, noise = results["good"]["result"], results["noise"]["result"]
    for space in ("classifier", "bandpower"):
        floor = good["fid"][space]["real_vs_real"]
        assert floor < 0.25 * noise["fid"][space]["value"], space
        assert good["fid"][space]["value"] < noise["fid"][space]["value"]
        assert good["precision"][space]["real_vs_real"] > 0.5 > noise["precision"][space]["value"]
        assert good["kid"][space]["real_vs_real"] < noise["kid"][space]["value"]
        assert noise["kid"][space]["se"] >= 0
    # the floor uses the same sample sizes as the generated set
    assert good["features"]["bandpower"]["pooled"]["n_real_train"] == good["n"]["generated"]


@pytest.mark.slow
def test_shuffled_labels_are_caught_per_class_and_by_conditional_accuracy(results):
    good, shuffled = results["good"]["result"], results["shuffled"]["result"]
    assert good["conditional_accuracy"]["health"]["balanced_accuracy"] > 0.85
    acc = shuffled["conditional_accuracy"]["health"]
    assert abs(acc["balanced_accuracy"] - 0.5) < 0.2 and set(acc["per_class_recall"]) == {"H", "PD"}
    for cls in ("H", "PD"):
        g = good["features"]["bandpower"]["per_class"]["health"][cls]
        s = shuffled["features"]["bandpower"]["per_class"]["health"][cls]
        assert s["generated"]["fid"] > 2 * g["real_vs_real"]["fid"]
        assert s["generated"]["fid"] > g["generated"]["fid"]


@pytest.mark.slow
def test_copies_of_training_images_are_flagged(results):
    copies, good = results["copies"]["result"]["memorisation"], results["good"]["result"]["memorisation"]
    assert copies["flagged"] and copies["copy_share"] == 1.0 and copies["closest"][0]["distance"] == 0
    assert not good["flagged"] and good["copy_share"] < 0.1


@pytest.mark.slow
def test_band_power_recovers_a_planted_shift(results):
    bp = results["shifted"]["result"]["band_power"]
    for cls in ("H", "PD"):
        s = bp["per_class"]["health"][cls]
        lo, hi = s["alpha"]["ci95"]
        assert s["alpha"]["difference"] == pytest.approx(30.0, abs=6) and 0 < lo < 30 < hi + 6
        for band in ("delta", "beta", "gamma"):
            assert abs(s[band]["difference"]) < 6
    plain = results["good"]["result"]["band_power"]["pooled"]["alpha"]
    assert plain["ci95"][0] < 3 and plain["ci95"][1] > -3


@pytest.mark.slow
def test_same_seed_same_json(sets, tmp_path):
    texts = []
    for i in range(2):
        ev = evaluate(sets["real"], sets["good"], tmp_path / f"run{i}", Options(skip_utility=True, steps=20, recipe=QUICK))
        write_outputs(tmp_path / f"run{i}", ev)
        text = (tmp_path / f"run{i}" / "evaluation.json").read_text()
        texts.append(text.replace(str(tmp_path / f"run{i}"), "OUT"))
    assert texts[0] == texts[1]


@pytest.mark.slow
def test_utility_tstr_trts_augmentation_over_three_seeds(sets, tmp_path):
    ev = evaluate(sets["real"], sets["good"], tmp_path / "out",
                  Options(steps=50, utility_seeds=3, features=("bandpower",), recipe=QUICK))["result"]
    for key in ("tstr", "trts", "augmentation", "trtr"):
        s = ev[key]["balanced_accuracy"]["health"]
        assert len(s["per_seed"]) == 3 and 0 <= s["mean"] <= 1 and s["std"] >= 0
        assert ev[key]["steps"] == 50 and ev[key]["seeds"] == [0, 1, 2]
    # real-only runs on well-separated classes
    assert ev["trtr"]["balanced_accuracy"]["health"]["mean"] > 0.7
    runs = sorted(p.name for p in (tmp_path / "out" / "utility").iterdir() if p.is_dir())
    assert runs == sorted(f"{k}-seed{s}" for k in ("real", "synthetic", "augmented") for s in range(3))


# -- outputs, CLI and plugins ------------------------------------------------------------------

@pytest.mark.slow
def test_outputs_json_keys_and_self_contained_html(results, tmp_path):
    paths = write_outputs(tmp_path, results["good"])
    data = json.loads(paths["json"].read_text())
    for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
        for space in ("classifier", "bandpower"):
            assert set(data[key][space]) >= {"value", "real_vs_real"}
    for key in ("conditional_accuracy", "band_power", "tstr", "trts", "augmentation", "memorisation"):
        assert key in data
    assert data["tstr"] == {"skipped": "--skip-utility"}
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") >= 3  # grid, spectrum, memorisation
    assert "src=\"http" not in page and "<link" not in page
    assert "NaN" not in paths["json"].read_text()


PLUGIN = '''
from sd_core import hookimpl
from sd_core.specs import FeatureExtractorSpec, SetMetricSpec


def _build(context):
    def extract(images):
        return images.mean(dim=(2, 3))  # mean brightness
    return extract


def _gap(real, gen, seed):
    return {"mean_gap": float((real.mean(0) - gen.mean(0)).abs().sum())}


@hookimpl
def sd_feature_extractors():
    return [FeatureExtractorSpec("brightness", _build, "mean grey level")]


@hookimpl
def sd_set_metrics():
    return [SetMetricSpec("mean_gap", _gap, ("mean_gap",), False, "distance of the means")]
'''


@pytest.mark.slow
def test_cli_with_a_plugin_feature_space_and_metric(sets, tmp_path):
    site = tmp_path / "site"
    make_fake_dist(site, "sd-brightness", "sd_brightness", PLUGIN)
    out = tmp_path / "ev"
    res = run_sd("evaluate", str(sets["real"]), str(sets["noise"]), "--out", str(out), "--skip-utility",
                 "--features", "brightness", "--features", "bandpower", "--steps", "20", extra_path=[site],
                 env={"OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr + res.stdout
    data = json.loads((out / "evaluation.json").read_text())
    assert set(data["features"]) == {"brightness", "bandpower"}
    pooled = data["features"]["brightness"]["pooled"]
    assert pooled["generated"]["mean_gap"] > pooled["real_vs_real"]["mean_gap"]
    assert data["features"]["brightness"]["owner"] == "sd-brightness"
    assert "mean_gap" in data["features"]["bandpower"]["pooled"]["generated"]
    assert "fid" in res.stdout and "report:" in res.stdout
    assert (out / "report.html").is_file()


def test_cli_errors_are_one_line(tmp_path, sets):
    res = run_sd("evaluate", str(tmp_path / "nope"), str(sets["good"]), "--skip-utility")
    assert res.returncode != 0 and "error:" in res.stderr and "Traceback" not in res.stderr
    res = run_sd("evaluate", str(sets["real"]), str(sets["good"]), "--features", "nosuch",
                 "--out", str(tmp_path / "x"), "--skip-utility")
    assert res.returncode != 0 and "nosuch" in res.stderr and "Traceback" not in res.stderr


def test_without_preprocess_json_the_band_space_is_skipped_with_a_reason(sets, tmp_path):
    import shutil

    real = tmp_path / "real"
    shutil.copytree(sets["real"], real)
    (real / "preprocess.json").unlink()
    ev = evaluate(real, sets["good"], tmp_path / "out", Options(skip_utility=True, steps=5, recipe=QUICK))
    res = ev["result"]
    assert "preprocess.json" in res["features"]["bandpower"]["skipped"]
    assert "preprocess.json" in res["band_power"]["skipped"] and res["preprocess"] is None
    assert "bandpower" not in res["fid"] and "classifier" in res["fid"]
    paths = write_outputs(tmp_path / "out", ev)
    assert "skipped" in paths["html"].read_text()


def test_help_lists_evaluate():
    res = run_sd("--help")
    assert res.returncode == 0 and "evaluate " in res.stdout and "evaluate-run" in res.stdout


def test_evaluate_replaces_only_what_it_made(sets, tmp_path):
    """A user's classifier run or report in --out is refused by name, never deleted; the runs and
    files an evaluation made are replaced by the next one."""
    out = tmp_path / "out"
    opts = Options(skip_utility=True, steps=20, recipe=QUICK)
    (out / "classifier").mkdir(parents=True)
    (out / "classifier" / "run.json").write_text('{"mine": true}')
    with pytest.raises(SdError, match=f"{out / 'classifier'} exists and was not made by sd evaluate"):
        evaluate(sets["real"], sets["good"], out, opts)
    assert (out / "classifier" / "run.json").read_text() == '{"mine": true}'
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.html").write_text("my report")
    ev = evaluate(sets["real"], sets["good"], other, opts)
    with pytest.raises(SdError, match=f"{other / 'report.html'} was not written by sd"):
        write_outputs(other, ev)
    assert (other / "report.html").read_text() == "my report" and not (other / "evaluation.json").exists()
    (other / "report.html").unlink()
    write_outputs(other, ev)
    again = evaluate(sets["real"], sets["good"], other, opts)  # its own runs and files: replaced
    write_outputs(other, again)
    assert json.loads((other / "evaluation.json").read_text())["n"] == ev["result"]["n"]
