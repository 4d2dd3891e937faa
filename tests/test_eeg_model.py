"""The synthetic EEG model recovers what it was given: alpha at the drawn IAF and posterior,
volume conduction that falls with distance, blinks frontal, a shared reference, and subjects that
differ more than one condition's effect; every draw is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from sd_core.signals import eeg_model
from sd_core.signals.eeg_model import State, Traits, draw_traits, mixing_matrix, positions, simulate

CH = ("Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6",
      "P3", "P4", "O1", "O2", "Fz", "Cz", "Pz")
FS = 250.0


def traits(**kw) -> Traits:
    base = dict(iaf=10.0, alpha_uv=15.0, theta_uv=3.0, beta_uv=2.5, exponent=1.5, background_uv=10.0,
                blinks_per_min=15.0, muscle_per_min=0.0)
    base.update(kw)
    return Traits(**base)


def psd(x):
    f, p = welch(x * 1e6, fs=FS, nperseg=int(4 * FS))
    return f, p


def test_alpha_peaks_at_the_drawn_frequency_and_is_posterior():
    for iaf in (8.5, 10.0, 11.5):
        x, _ = simulate(np.random.default_rng(0), traits(iaf=iaf), CH, 60, FS, artefacts=False)
        f, p = psd(x)
        band = (f > 6) & (f < 14)
        o1, fp1 = CH.index("O1"), CH.index("Fp1")
        assert abs(f[band][np.argmax(p[o1][band])] - iaf) <= 0.5
        alpha = (f > iaf - 1) & (f < iaf + 1)
        assert p[o1][alpha].mean() > 2 * p[fp1][alpha].mean()


def test_volume_conduction_falls_with_distance():
    xyz = positions(("C5", "C3", "C1", "Cz", "C2", "C4", "C6", "FC3", "CP3", "Fp1", "O2", "T7", "T8"))
    mix = mixing_matrix(xyz)
    corr = (mix @ mix.T)
    d = np.sqrt(((xyz[:, None] - xyz[None]) ** 2).sum(-1))
    near, far = corr[(d > 0) & (d < 0.045)], corr[d > 0.12]
    assert len(near) and len(far)
    assert near.mean() > 0.4 and far.max() < 0.1
    assert np.allclose(np.diag(corr), 1.0)


def test_old_and_new_names_are_one_electrode_and_unknown_ones_are_refused():
    assert np.allclose(positions(["T3"]), positions(["T7"]))
    assert np.allclose(positions(["fp1"]), positions(["Fp1"]))
    with pytest.raises(ValueError, match="XY9"):
        positions(["XY9"])


def test_blinks_are_frontal_and_recorded():
    x, truth = simulate(np.random.default_rng(3), traits(blinks_per_min=30.0), CH, 60, FS)
    blinks = [e for e in truth["artefacts"] if e["kind"] == "blink"]
    assert 15 <= len(blinks) <= 50
    t = np.arange(x.shape[1]) / FS
    during = np.zeros_like(t, dtype=bool)
    for b in blinks:
        during |= (t >= b["start"]) & (t < b["stop"])
    fp1, o1 = CH.index("Fp1"), CH.index("O1")
    lift = lambda i: np.abs(x[i][during]).mean() / np.abs(x[i][~during]).mean()  # noqa: E731
    assert lift(fp1) > 2.0 and lift(o1) < 1.5


def test_a_shared_reference_correlates_the_channels():
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    free, _ = simulate(rng_a, traits(), CH, 30, FS, artefacts=False)
    ref, _ = simulate(rng_b, traits(), CH, 30, FS, artefacts=False, reference=("A1", "A2"))
    assert ref.shape == free.shape
    off = ~np.eye(len(CH), dtype=bool)
    assert np.corrcoef(ref)[off].mean() > np.corrcoef(free)[off].mean() + 0.05


def test_subjects_differ_more_than_a_condition_does():
    """Between-subject spread of log alpha power exceeds a 20 % alpha decrease (the arithmetic
    effect's size), as in real EEG."""
    rng = np.random.default_rng(11)
    drawn = [draw_traits(rng, age=22) for _ in range(200)]
    log_alpha = np.log([t.alpha_uv ** 2 for t in drawn])
    assert log_alpha.std() > 2 * abs(np.log(0.8))
    iafs = np.array([t.iaf for t in drawn])
    assert 9.5 < iafs.mean() < 10.5 and 0.7 < iafs.std() < 1.3
    older = np.array([draw_traits(rng, age=75).iaf for _ in range(200)])
    assert older.mean() < iafs.mean() - 0.5
    assert all(0.8 <= t.exponent <= 2.5 for t in drawn)


def test_a_state_changes_its_band_and_the_same_seed_gives_the_same_recording():
    rest, truth = simulate(np.random.default_rng(7), traits(), CH, 60, FS, artefacts=False)
    task, _ = simulate(np.random.default_rng(7), traits(), CH, 60, FS, State(alpha=0.5), artefacts=False)
    again, truth2 = simulate(np.random.default_rng(7), traits(), CH, 60, FS, artefacts=False)
    assert np.array_equal(rest, again) and truth == truth2
    f, pr = psd(rest)
    _, pt = psd(task)
    alpha, beta = (f > 9) & (f < 11), (f > 18) & (f < 22)
    o1 = CH.index("O1")
    assert pt[o1][alpha].mean() < 0.5 * pr[o1][alpha].mean()
    assert 0.7 < pt[o1][beta].mean() / pr[o1][beta].mean() < 1.4


def test_ground_truth_round_trips(tmp_path):
    rng = np.random.default_rng(2)
    t = draw_traits(rng, 30)
    _, rec = simulate(rng, t, CH, 20, FS)
    eeg_model.write_truth(tmp_path, {"S1": {"traits": t, "gender": "F"}}, {"S1_1": rec})
    back = eeg_model.read_truth(tmp_path)
    assert back["subjects"]["S1"]["traits"]["iaf"] == pytest.approx(t.iaf, abs=1e-3)
    assert back["recordings"]["S1_1"]["artefacts"] == rec["artefacts"]
