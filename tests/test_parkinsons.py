"""sd-parkinsons (OpenNeuro ds004584): BIDS discovery, EEGLAB reading, sidecars, bad channels,
the demo writer end to end, and bad inputs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, run_sd, small_prep
from sd_parkinsons.bids import bad_channels, find_eeg_files, read_participants
from sd_parkinsons.demo import CHANNELS as DEMO_CHANNELS
from sd_parkinsons.demo import FS as DEMO_FS
from sd_parkinsons.demo import write_ds004584
from sd_parkinsons.plugin import ParkinsonsDataset

from sd_core.dataset import Recording
from sd_core.errors import ConfigError, DatasetError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.subject import read_span

PLUGIN = ParkinsonsDataset()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {k: o.default for k, o in PLUGIN.options.items()}
FS, NSAMPS, R = 125.0, 500, 128  # 4 s windows every 2 s
SECONDS = 60
PER_REC = (SECONDS * int(FS) - NSAMPS) // (NSAMPS // 2) + 1


def prep(**kw):
    return small_prep(**{"fs": FS, "nsamps": NSAMPS, "resolution": R, **kw})


rows = read_rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw") / "parkinsons"
    truth = write_ds004584(root, seed=5)
    return root, truth


@pytest.fixture(scope="module")
def processed(demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "parkinsons"
    res = preprocess_dataset(PLUGIN, demo[0], out, prep(), CHANNELS, OPTIONS)
    assert not res.errors
    return out


def copy_subjects(demo_root: Path, target: Path, subjects: list[str]) -> Path:
    """A copy of the demo with some subjects (files copied, so that tests may damage them)."""
    target.mkdir(parents=True)
    for name in ("dataset_description.json", "participants.tsv"):
        shutil.copy(demo_root / name, target / name)
    for sid in subjects:
        shutil.copytree(demo_root / sid, target / sid)
    lines = (demo_root / "participants.tsv").read_text().splitlines()
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split("\t")[0] in subjects]
    (target / "participants.tsv").write_text("\n".join(keep) + "\n")
    return target


# -- reading real files ----------------------------------------------------------------------------

def test_real_eeglab_through_the_loading_path(real_data):
    path = real_data / "eeglab" / "test_raw.set"
    raw = PLUGIN.read_raw(Recording("test_raw", path, extra={"sidecar": None, "channels_tsv": None}), OPTIONS)
    assert raw.ch_names == [f"EEG {i:03d}" for i in range(32)]
    assert raw.info["sfreq"] == 128.0 and raw.n_times == 30504
    data = raw.get_data(picks=[0, 31], start=0, stop=30504)
    assert data.shape == (2, 30504) and np.isfinite(data).all()
    typical = float(np.median(np.abs(data)))
    assert 1e-6 < typical < 1e-4  # volts, of the order of 1e-5
    # the plugin maps the file's names like the core does: "EEG 000" → "000"
    assert PLUGIN.channel_name("EEG 000") == "000"


# -- participants.tsv and BIDS discovery -------------------------------------------------------------

def test_participants_columns_are_matched_case_insensitively(tmp_path):
    table = tmp_path / "participants.tsv"
    table.write_text("participant_id\tGROUP\tAGE\tGENDER\n"
                     "sub-001\tPD\t71\tM\n"
                     "sub-002\tControl\t62.0\tF\n"
                     "sub-003\tPD\tn/a\tn/a\n")
    assert read_participants(table) == {
        "sub-001": {"health": "PD", "gender": "M", "age": 71},
        "sub-002": {"health": "H", "gender": "F", "age": 62},
        "sub-003": {"health": "PD", "gender": None, "age": None},
    }
    table.write_text("Participant_ID\tgroup\tsex\tAge\thandedness\n"
                     "004\tcontrol\tfemale\t58\tR\n"
                     "sub-005\tparkinson's\tmale\t80\tL\n\n")
    assert read_participants(table) == {
        "sub-004": {"health": "H", "gender": "F", "age": 58},
        "sub-005": {"health": "PD", "gender": "M", "age": 80},
    }
    table.write_text("participant_id\tAGE\tGENDER\nsub-001\t71\tM\n")
    with pytest.raises(DatasetError, match="no 'group' column .*has: participant_id, AGE, GENDER"):
        read_participants(table)
    table.write_text("participant_id\tGROUP\nsub-001\tMCI\n")
    with pytest.raises(DatasetError, match="line 2: group 'MCI' is neither PD nor a control group"):
        read_participants(table)
    table.write_text("participant_id\tGROUP\tGENDER\nsub-001\tPD\tX\n")
    with pytest.raises(DatasetError, match="line 2: gender 'X'"):
        read_participants(table)


def test_sessions_tasks_and_inherited_sidecars(tmp_path):
    root = tmp_path / "bids"
    for rel in ("sub-01/eeg/sub-01_task-Rest_eeg.set", "sub-01/eeg/sub-01_task-Oddball_eeg.set",
                "sub-02/ses-1/eeg/sub-02_ses-1_task-Rest_run-1_eeg.set",
                "sub-02/ses-2/eeg/sub-02_ses-2_task-rest_eeg.set",
                "sub-02/ses-2/eeg/sub-02_ses-2_task-rest_channels.tsv",
                "sub-03/eeg/sub-04_task-Rest_eeg.set",  # wrong subject: ignored
                "task-Rest_eeg.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    files = find_eeg_files(root, "Rest")
    assert sorted(files) == ["sub-01", "sub-02"]
    assert [f.id for f in files["sub-01"]] == ["task-Rest"]
    assert [f.id for f in files["sub-02"]] == ["ses-1_task-Rest_run-1", "ses-2_task-rest"]
    assert files["sub-02"][0].entities == {"ses": "1", "task": "Rest", "run": "1"}
    assert all(f.sidecar == root / "task-Rest_eeg.json" for f in files["sub-01"] + files["sub-02"][:1])
    assert files["sub-02"][1].channels_tsv.name == "sub-02_ses-2_task-rest_channels.tsv"
    assert files["sub-01"][0].channels_tsv is None
    assert sorted(f.id for f in find_eeg_files(root, "*")["sub-01"]) == ["task-Oddball", "task-Rest"]


def test_options_are_checked(demo):
    assert OPTIONS == {"task": "Rest", "bad_channels": "skip", "check_sidecar": True}
    assert PLUGIN.options["bad_channels"].choices == ("skip", "interpolate", "keep")
    with pytest.raises(ConfigError, match="bad_channels = 'drop'.*skip, interpolate, keep"):
        PLUGIN.find_subjects(demo[0], {**OPTIONS, "bad_channels": "drop"})
    assert PLUGIN.find_subjects(demo[0], {**OPTIONS, "task": "Oddball"})[0].recordings[0].path.name == \
        "sub-001_task-Oddball_eeg.set"  # listed subjects without such a recording: reported later


# -- the demo, end to end ----------------------------------------------------------------------------

def test_demo_writes_bids_layout(demo):
    import mne

    root, truth = demo
    assert (root / "participants.tsv").read_text().splitlines()[0] == "participant_id\tGROUP\tAGE\tGENDER"
    assert json.loads((root / "dataset_description.json").read_text())["BIDSVersion"]
    sets = sorted(p.relative_to(root).as_posix() for p in root.rglob("*_eeg.set"))
    assert sets == [f"sub-{i:03d}/eeg/sub-{i:03d}_task-Rest_eeg.set" for i in range(1, 9)]
    fdts = sorted(p.name for p in root.rglob("*.fdt"))
    assert fdts == [f"sub-{i:03d}_task-Rest_eeg.fdt" for i in range(1, 8)]  # sub-008 embedded
    sidecar = json.loads((root / "sub-001/eeg/sub-001_task-Rest_eeg.json").read_text())
    assert sidecar["SamplingFrequency"] == DEMO_FS and sidecar["EEGChannelCount"] == 63
    assert bad_channels(root / "sub-003/eeg/sub-003_task-Rest_channels.tsv") == ["FT9"]
    assert bad_channels(root / "sub-001/eeg/sub-001_task-Rest_channels.tsv") == []
    for sid in ("sub-001", "sub-008"):
        raw = mne.io.read_raw_eeglab(root / sid / "eeg" / f"{sid}_task-Rest_eeg.set", verbose="error")
        assert raw.ch_names == list(DEMO_CHANNELS) and len(raw.ch_names) == 63
        assert raw.info["sfreq"] == DEMO_FS and raw.n_times == SECONDS * DEMO_FS
        x = raw.get_data() * 1e6
        assert 5 < np.std(x) < 100  # plausible EEG in µV
    assert {(t["health"], t["gender"]) for t in truth.values()} == {("PD", "F"), ("PD", "M"), ("H", "F"), ("H", "M")}


def test_every_window_carries_the_written_labels(demo, processed):
    root, truth = demo
    meta = rows(processed / "metadata.csv")
    assert len(meta) == 8 * PER_REC
    assert list(meta[0]) == ["file_name", "split", "dataset", "subject", "gender", "health", "age",
                             "recording", "window", "start", "caption"]
    for r in meta:
        t = truth[r["subject"]]
        assert (r["health"], r["gender"], int(r["age"])) == (t["health"], t["gender"], t["age"])
        assert r["recording"] == "task-Rest" and r["dataset"] == "parkinsons"
        assert r["file_name"] == f"{r['split']}/{r['subject']}/task-Rest-{r['window']}.png"
        assert (processed / r["file_name"]).is_file()
        gender = "female" if t["gender"] == "F" else "male"
        if t["health"] == "PD":
            assert r["caption"] == f"an EEG spectrogram of a {t['age']} year old, {gender} subject with Parkinson's disease"
        else:
            assert r["caption"] == f"an EEG spectrogram of a {t['age']} year old, healthy, {gender} subject"
    per_subject = {s: sum(r["subject"] == s for r in meta) for s in truth}
    assert set(per_subject.values()) == {PER_REC}
    splits = {r["subject"]: r["split"] for r in meta}
    assert {splits[s] for s in truth} == {"train", "val", "test"}
    info = json.loads((processed / "preprocess.json").read_text())
    assert all(s["status"] == "done" and not s["errors"] for s in info["subjects"].values())
    assert info["parameters"]["channels"] == ["Fp1", "Fp2", "F3", "F4", "Fz", "F7", "F8", "C3", "C4", "Cz",
                                              "P3", "P4", "Pz", "O1", "O2", "T7", "T8", "TP7", "TP8", "TP10"]


def test_ground_truth_labels_and_effects(demo):
    """sd-demo-truth.json: the labels of participants.tsv, ds004584's class balance, and the
    drawn Parkinson's effect (slowing, with spread) handed to the signal model as drawn."""
    from sd_core.signals.eeg_model import read_truth

    root, truth = demo
    gt = read_truth(root)
    subjects = gt["subjects"]
    assert {s: (t["health"], t["gender"], t["age"]) for s, t in subjects.items()} == \
        {s: (t["health"], t["gender"], t["age"]) for s, t in read_participants(root / "participants.tsv").items()}
    assert sorted(subjects) == sorted(truth)
    assert [t["group"] for t in subjects.values()].count("PD") == round(8 * 100 / 149) == 5
    for sid, t in subjects.items():
        state, effect = gt["recordings"][f"{sid}_task-Rest"]["state"], t["effect"]
        assert 45 <= t["age"] <= 85 and 6.5 <= t["traits"]["iaf"] <= 13.5
        assert state["iaf_shift"] == pytest.approx(effect["iaf_shift"])
        assert state["theta"] == pytest.approx(np.sqrt(effect["theta_power_ratio"]))
        assert state["beta"] == pytest.approx(np.sqrt(effect["beta_power_ratio"]))
        if t["group"] == "Control":
            assert effect == {"iaf_shift": 0.0, "theta_power_ratio": 1.0, "beta_power_ratio": 1.0}
    assert gt["recordings"]["sub-003_task-Rest"]["marked_bad"] == ["FT9"]
    pd = [t["effect"] for t in subjects.values() if t["group"] == "PD"]
    assert np.mean([e["iaf_shift"] for e in pd]) < 0  # slowing on average
    # spread: not every PD subject shows every part of the effect
    assert any(e["iaf_shift"] > -0.2 or e["theta_power_ratio"] < 1 or e["beta_power_ratio"] > 1 for e in pd)


def test_drawn_participants_and_effects_follow_the_model():
    """Many draws: ds004584's class balance, more men among PD, and the PD effect's sizes and
    spread (IAF −0.6 ± 0.6 Hz, theta ×1.3, beta ×0.9 in power; some PD subjects without it)."""
    from sd_parkinsons.demo import draw_effect, draw_genders, draw_groups

    rng = np.random.default_rng(0)
    for n in (2, 4, 8, 30, 149):
        groups = draw_groups(rng, n)
        assert groups.count("PD") == (round(n * 100 / 149) if n < 4 else min(max(round(n * 100 / 149), 2), n - 2))
    assert draw_groups(np.random.default_rng(1), 30) != draw_groups(np.random.default_rng(2), 30)  # shuffled
    genders = draw_genders(rng, ["PD"] * 4000 + ["Control"] * 4000)
    assert 0.57 < genders[:4000].count("M") / 4000 < 0.63 and 0.47 < genders[4000:].count("M") / 4000 < 0.53
    effects = [draw_effect(rng, "PD") for _ in range(4000)]
    shift = np.array([e["iaf_shift"] for e in effects])
    theta = np.log([e["theta_power_ratio"] for e in effects])
    beta = np.log([e["beta_power_ratio"] for e in effects])
    assert abs(shift.mean() + 0.6) < 0.05 and abs(shift.std() - 0.6) < 0.05
    assert abs(np.median(theta) - np.log(1.3)) < 0.03 and abs(theta.std() - 0.35) < 0.03
    assert abs(np.median(beta) - np.log(0.9)) < 0.03 and abs(beta.std() - 0.3) < 0.03
    assert 0.1 < (shift > 0).mean() < 0.25  # about one PD subject in six has no slower alpha
    assert draw_effect(rng, "Control") == {"iaf_shift": 0.0, "theta_power_ratio": 1.0, "beta_power_ratio": 1.0}


def posterior_alpha_peak(path: Path) -> float:
    """The alpha peak (Hz) of a recording: the centroid, 6–14 Hz, of the posterior spectrum above
    its aperiodic (log-log linear) fit."""
    import mne
    from scipy.signal import welch

    raw = mne.io.read_raw_eeglab(path, verbose="error")
    f, p = welch(raw.get_data(picks=["O1", "O2", "Oz", "POz", "PO3", "PO4", "Pz"]), raw.info["sfreq"],
                 nperseg=int(8 * raw.info["sfreq"]))
    p = np.median(p, axis=0)
    alpha, fit = (f >= 6) & (f <= 14), (f >= 2) & (f <= 35) & ~((f >= 6) & (f <= 14))
    line = np.polyfit(np.log(f[fit]), np.log(p[fit]), 1)
    above = np.clip(p[alpha] - np.exp(np.polyval(line, np.log(f[alpha]))), 0, None)
    return float((f[alpha] * above).sum() / above.sum())


def test_alpha_peak_follows_the_drawn_slowing(demo):
    """Each recording's alpha peak sits at the subject's IAF plus its drawn PD shift; PD subjects
    with a drawn shift of 0.3 Hz or more are slower than their own trait IAF, most of them."""
    root, truth = demo
    peak = {s: posterior_alpha_peak(root / s / "eeg" / f"{s}_task-Rest_eeg.set") for s in truth}
    iaf = {s: t["traits"].iaf for s, t in truth.items()}
    shift = {s: t["effect"]["iaf_shift"] for s, t in truth.items()}
    assert sum(abs(peak[s] - iaf[s] - shift[s]) < 0.3 for s in truth) >= 7
    slowed = [s for s, t in truth.items() if t["group"] == "PD" and shift[s] <= -0.3]
    assert len(slowed) >= 2
    assert sum(peak[s] < iaf[s] for s in slowed) >= 0.75 * len(slowed)
    measured = {g: np.mean([peak[s] - iaf[s] for s, t in truth.items() if t["group"] == g]) for g in ("PD", "Control")}
    assert measured["PD"] < measured["Control"] - 0.2


def test_images_show_each_subjects_alpha_peak(processed, demo):
    """The spectrogram images carry the slowing: the alpha row of each subject's mean image
    follows the subject's drawn alpha frequency (trait IAF plus PD shift)."""
    from PIL import Image
    from scipy.stats import spearmanr

    from sd_core.spectrogram import log_frequencies

    truth = demo[1]
    freqs = log_frequencies(R) * FS
    profiles: dict[str, list] = {}
    for r in rows(processed / "metadata.csv"):
        img = np.asarray(Image.open(processed / r["file_name"]), dtype=float)
        profiles.setdefault(r["subject"], []).append(img[:, img.sum(0) > 0].mean(1))
    alpha = (freqs >= 7) & (freqs <= 13.5)
    found, drawn = [], []
    for s, p in profiles.items():
        by_freq = np.mean(p, axis=0)[R - 2 - np.arange(R - 1)]  # row R-1-(1+i) holds frequency i
        found.append(freqs[alpha][np.argmax(by_freq[alpha])])
        drawn.append(truth[s]["traits"].iaf + truth[s]["effect"]["iaf_shift"])
    assert sum(abs(a - b) < 0.5 for a, b in zip(found, drawn)) >= 7
    assert spearmanr(found, drawn).statistic > 0.8


# -- BIDS metadata: sidecar rate and bad channels ---------------------------------------------------

def test_sidecar_rate_must_agree(demo, tmp_path):
    root = copy_subjects(demo[0], tmp_path / "raw", ["sub-001", "sub-002"])
    sidecar = root / "sub-002/eeg/sub-002_task-Rest_eeg.json"
    sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "SamplingFrequency": 250}))
    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert {r.subject: r.status for r in res.results} == {"sub-001": "done", "sub-002": "failed"}
    assert res.errors == ["sub-002/task-Rest: sub-002_task-Rest_eeg.set is sampled at 500 Hz but "
                          "sub-002_task-Rest_eeg.json says SamplingFrequency 250; fix the one that is "
                          "wrong (or set check_sidecar = false to trust the .set)"]
    trusting = preprocess_dataset(PLUGIN, root, tmp_path / "out2", prep(), CHANNELS,
                                  {**OPTIONS, "check_sidecar": False})
    assert not trusting.errors and trusting.images and sum(trusting.images.values()) == 2 * PER_REC


def test_bad_channels_skip_keep_interpolate(demo, tmp_path):
    root = copy_subjects(demo[0], tmp_path / "raw", ["sub-003"])
    chans = [*CHANNELS, "Oz"]  # Oz: a posterior channel with neighbours to interpolate from
    tsv = root / "sub-003/eeg/sub-003_task-Rest_channels.tsv"
    rec = PLUGIN.find_subjects(root, OPTIONS)[0].recordings[0]
    assert rec.extra["channels_tsv"] == tsv
    # FT9 is bad but not in the image: the recording is used
    data, fs, _ = read_span(PLUGIN, rec, chans, OPTIONS)
    assert data.shape == (21, SECONDS * 500) and fs == 500.0
    with pytest.raises(DatasetError, match=r"sub-003_task-Rest_eeg\.set: channel\(s\) FT9 marked bad"):
        read_span(PLUGIN, rec, ["FT9", "Cz"], OPTIONS)
    # Oz marked bad too: the image needs it
    lines = [ln.replace("\tgood\t", "\tbad\t") if ln.startswith("Oz\t") else ln
             for ln in tsv.read_text().splitlines()]
    tsv.write_text("\n".join(lines) + "\n")
    assert bad_channels(tsv) == ["FT9", "Oz"]
    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), chans, OPTIONS)
    assert res.errors == ["sub-003/task-Rest: sub-003_task-Rest_eeg.set: channel(s) Oz marked bad in the "
                          "recording's metadata; recording skipped"]
    kept, _, _ = read_span(PLUGIN, rec, chans, {**OPTIONS, "bad_channels": "keep"})
    interp, _, _ = read_span(PLUGIN, rec, chans, {**OPTIONS, "bad_channels": "interpolate"})
    oz = chans.index("Oz")
    others = [i for i in range(len(chans)) if i != oz]
    np.testing.assert_allclose(kept, data, atol=1e-9)
    np.testing.assert_allclose(interp[others], data[others], atol=1e-9)  # good channels untouched
    assert not np.allclose(interp[oz], data[oz])
    # the interpolated Oz follows its neighbours O1/O2 (the shared posterior alpha) closely
    o1, o2 = chans.index("O1"), chans.index("O2")
    assert np.corrcoef(interp[oz], (data[o1] + data[o2]) / 2)[0, 1] > 0.5
    assert np.std(interp[oz]) > 0.3 * np.std(data[oz])


# -- bad inputs ------------------------------------------------------------------------------------

def test_missing_participants_table(demo, tmp_path):
    root = copy_subjects(demo[0], tmp_path / "raw", ["sub-001"])
    (root / "participants.tsv").unlink()
    with pytest.raises(DatasetError, match=r"participants\.tsv not found in .*ds004584 ships it") as e:
        preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert len(str(e.value).splitlines()) == 1
    res = run_sd("preprocess", "--dataset", "parkinsons", "--raw", str(root), "--output", str(tmp_path / "o2"))
    assert res.returncode == 1
    assert "participants.tsv not found" in res.stderr and "Traceback" not in res.stderr


def test_table_and_recordings_that_do_not_match(demo, tmp_path, caplog):
    root = copy_subjects(demo[0], tmp_path / "raw", ["sub-001", "sub-002", "sub-003"])
    shutil.rmtree(root / "sub-002")  # listed, no recording
    lines = (root / "participants.tsv").read_text().splitlines()
    (root / "participants.tsv").write_text("\n".join(ln for ln in lines if not ln.startswith("sub-003")) + "\n")
    with caplog.at_level(logging.WARNING):
        res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert "recordings of sub-003 have no row in participants.tsv and are left out" in caplog.text
    assert {r.subject: r.status for r in res.results} == {"sub-001": "done", "sub-002": "failed"}
    missing = root / "sub-002/eeg/sub-002_task-Rest_eeg.set"
    assert res.errors == [f"sub-002/task-Rest: sub-002_task-Rest_eeg.set: file not found ({missing})"]
    assert sum(res.images.values()) == PER_REC


def test_damaged_files_are_reported_and_the_others_finish(demo, tmp_path):
    subjects = ["sub-001", "sub-002", "sub-003", "sub-004"]
    root = copy_subjects(demo[0], tmp_path / "raw", subjects)
    fdt = root / "sub-002/eeg/sub-002_task-Rest_eeg.fdt"
    fdt.write_bytes(fdt.read_bytes()[: fdt.stat().st_size // 3])  # interrupted download
    (root / "sub-003/eeg/sub-003_task-Rest_eeg.fdt").unlink()
    (root / "sub-004/eeg/sub-004_task-Rest_eeg.set").write_bytes(b"not a MATLAB file\n" * 20)
    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert {r.subject: r.status for r in res.results} == {
        "sub-001": "done", "sub-002": "failed", "sub-003": "failed", "sub-004": "failed"}
    errors = sorted(res.errors)
    assert all(len(e.splitlines()) == 1 for e in errors)
    assert errors[0] == ("sub-002/task-Rest: sub-002_task-Rest_eeg.fdt: truncated EEGLAB data file "
                         "(2520000 of 7560000 bytes: 20.0 of 60.0 s); download it again")
    assert errors[1] == ("sub-003/task-Rest: sub-003_task-Rest_eeg.set: its data file "
                         "sub-003_task-Rest_eeg.fdt is missing (EEGLAB keeps the samples beside the "
                         ".set); download it again")
    assert errors[2].startswith("sub-004/task-Rest: sub-004_task-Rest_eeg.set: not a readable EEGLAB .set file (")
    meta = rows(tmp_path / "out" / "metadata.csv")
    assert len(meta) == PER_REC and {r["subject"] for r in meta} == {"sub-001"}
