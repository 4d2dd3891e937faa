"""sd-seed (SEED-V): the CNT reader and writer, tables, the demo end to end, bad inputs, and a
full-size session file."""

from __future__ import annotations

import json
import logging
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, read_rows, run_sd, small_prep
from sd_seed.cnt import read_header, read_raw_neuroscan, read_samples, write_cnt
from sd_seed.demo import CHANNELS as SEED_CHANNELS
from sd_seed.demo import demo_trials, write_participants_xlsx, write_seed_v
from sd_seed.plugin import SeedDataset, trial_table
from sd_seed.tables import EMOTIONS, builtin_trials, read_participants, read_trials

from sd_core.dataset import Recording
from sd_core.errors import ConfigError, DatasetError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.subject import read_span

PLUGIN = SeedDataset()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {k: o.default for k, o in PLUGIN.options.items()}
FS, NSAMPS, R = 125.0, 500, 128  # 4 s windows every 2 s
CLIP = 8.0
PER_TRIAL = (int(CLIP * FS) - NSAMPS) // (NSAMPS // 2) + 1
REAL_CNT = "cnt/test_CNT_events_mne_JWoess_clipped.cnt"
UNIT32, UNIT16 = 2 / 204.8 * 1e-6, 16 / 204.8 * 1e-6  # volts per unit of the writer's samples


def prep(**kw):
    return small_prep(**{"fs": FS, "nsamps": NSAMPS, "resolution": R, **kw})


rows = read_rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw") / "seed"
    truth = write_seed_v(root, seed=4, clip_seconds=CLIP)
    return root, truth


@pytest.fixture(scope="module")
def processed(demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "seed"
    res = preprocess_dataset(PLUGIN, demo[0], out, prep(), CHANNELS, OPTIONS)
    assert not res.errors
    return out


def copy_demo(demo_root: Path, target: Path, subjects: list[str]) -> Path:
    (target / "EEG_raw").mkdir(parents=True)
    shutil.copy(demo_root / "trials.csv", target / "trials.csv")
    people = read_participants(demo_root / "Participants_info.xlsx")
    write_participants_xlsx(target / "Participants_info.xlsx",
                            [(s, people[s]["gender"], people[s]["age"]) for s in subjects])
    for p in (demo_root / "EEG_raw").iterdir():
        if p.name.split("_")[0] in subjects:
            shutil.copy(p, target / "EEG_raw" / p.name)
    return target


# -- the real CNT file -----------------------------------------------------------------------------

def test_real_cnt_through_the_loading_path(real_data):
    import mne

    path = real_data / REAL_CNT
    raw = PLUGIN.read_raw(Recording("clipped", path), OPTIONS)
    assert raw.ch_names == ["F8", "FCz"]
    assert raw.info["sfreq"] == 1000.0 and raw.n_times == 90000
    header = read_header(path)
    assert header.bytes_per_sample == 4 and header.header_n_samples == 90000
    assert header.how.startswith("samples (both widths fit before the event table): 32-bit (read as 16-bit "
                                 "12.5 % of steps jump by half the 16-bit range or more, read as 32-bit 2.7 %")
    data = raw.get_data()
    assert data.shape == (2, 90000) and 1e-7 < float(np.median(np.abs(data))) < 1e-4
    # the same values MNE gives when told the format (its "auto" cannot size this file)
    ref = mne.io.read_raw_cnt(path, data_format="int32", verbose="error")
    assert ref.ch_names == raw.ch_names and ref.n_times == raw.n_times
    np.testing.assert_array_equal(raw.get_data(), ref.get_data())
    np.testing.assert_array_equal(raw.get_data(picks=[1], start=1234, stop=5678),
                                  ref.get_data(picks=[1], start=1234, stop=5678))
    assert raw.info["meas_date"] == ref.info["meas_date"]
    # a span read by the core, by name
    data, fs, t0 = read_span(PLUGIN, Recording("clipped", path, start=10.0, stop=12.5), ["FCz"], OPTIONS)
    assert data.shape == (1, 2500) and fs == 1000.0 and t0 == 10.0
    np.testing.assert_allclose(data[0], ref.get_data(picks=[1], start=10000, stop=12500)[0] * 1e6)


# -- the CNT writer and reader ---------------------------------------------------------------------

def test_writer_round_trip_through_mne(tmp_path):
    import mne

    rng = np.random.default_rng(0)
    names = ["FP1", "FPZ", "CZ", "OZ", "HEO"]
    x = rng.normal(0, 30e-6, (5, 7001))
    n = write_cnt(tmp_path / "a.cnt", [x[:, :3000], x[:, 3000:]], names, 1000,
                  events=[(1.0, 3), (5.5, 7)], sex="F")
    assert n == 7001
    ref = mne.io.read_raw_cnt(tmp_path / "a.cnt", verbose="error")  # MNE's "auto" sizes it
    assert ref.ch_names == names and ref.info["sfreq"] == 1000.0 and ref.n_times == 7001
    np.testing.assert_allclose(ref.get_data(), x, atol=0.5 * UNIT32 + 1e-15)  # within half a unit
    assert list(ref.annotations.onset) == [1.0, 5.5] and list(ref.annotations.description) == ["3", "7"]
    ours = read_raw_neuroscan(tmp_path / "a.cnt")
    np.testing.assert_array_equal(ours.get_data(), ref.get_data())
    assert read_header(tmp_path / "a.cnt").how == "header: samples fill the data exactly"
    # 16-bit samples
    write_cnt(tmp_path / "b.cnt", [x], names, 500, bytes_per_sample=2)
    ref = mne.io.read_raw_cnt(tmp_path / "b.cnt", verbose="error")
    assert ref.info["sfreq"] == 500.0
    np.testing.assert_allclose(ref.get_data(), x, atol=0.5 * UNIT16 + 1e-15)
    assert read_header(tmp_path / "b.cnt").bytes_per_sample == 2
    np.testing.assert_array_equal(read_raw_neuroscan(tmp_path / "b.cnt").get_data(), ref.get_data())


def test_sizing_files_whose_header_is_wrong(tmp_path):
    import mne

    rng = np.random.default_rng(1)
    x = rng.normal(0, 30e-6, (3, 4000))
    for nbytes in (4, 2):
        # NumSamples as SEED-V sessions have it: 4294966564 unsigned, −732 signed
        p = tmp_path / f"neg{nbytes}.cnt"
        write_cnt(p, [x], ["C3", "CZ", "C4"], 1000, bytes_per_sample=nbytes, header_n_samples=-732)
        h = read_header(p)
        assert (h.bytes_per_sample, h.n_samples, h.header_n_samples) == (nbytes, 4000, -732)
        assert h.how.startswith("samples (the header's sample count, -732, is unusable; "
                                f"{4000 * 3 * nbytes} bytes before the event table): {8 * nbytes}-bit (")
        ref = mne.io.read_raw_cnt(p, data_format=f"int{8 * nbytes}", verbose="error")
        np.testing.assert_array_equal(read_raw_neuroscan(p).get_data(), ref.get_data())
        with pytest.raises(RuntimeError, match="Could not automatically compute number of bytes"):
            mne.io.read_raw_cnt(p, verbose="error")
    # spare bytes between the samples and the event table (like the clipped test file): 10 bytes
    # leave only 16-bit fitting; 30000 leave both, and the samples tell
    for spare, how in ((10, "header: the only sample width whose samples fit before the event table"),
                       (30000, "samples (both widths fit before the event table): 16-bit (read as 16-bit 0.0 %")):
        p = tmp_path / f"spare{spare}.cnt"
        write_cnt(p, [x], ["C3", "CZ", "C4"], 1000, bytes_per_sample=2)
        blob = bytearray(p.read_bytes())
        end = 900 + 75 * 3 + 4000 * 3 * 2
        blob[end:end] = bytes(range(256)) * (spare // 256) + bytes(spare % 256)
        struct.pack_into("<i", blob, 886, end + spare)
        p.write_bytes(bytes(blob))
        h = read_header(p)
        assert (h.bytes_per_sample, h.n_samples, h.how[:len(how)]) == (2, 4000, how)
        ref = mne.io.read_raw_cnt(p, data_format="int16", verbose="error")
        np.testing.assert_array_equal(read_raw_neuroscan(p).get_data(), ref.get_data())
    # forcing the format overrides the header
    assert read_header(tmp_path / "neg4.cnt", "int16").bytes_per_sample == 2
    # a file that is all zeros cannot be sniffed: the message says what to set
    write_cnt(tmp_path / "zero.cnt", [np.zeros((3, 4000))], ["C3", "CZ", "C4"], 1000, header_n_samples=0)
    with pytest.raises(DatasetError, match='cannot tell whether samples are 16 or 32 bit.*data_format = "int16" or "int32"'):
        read_header(tmp_path / "zero.cnt")


def test_blocked_channel_layout_matches_mne(tmp_path):
    """Files whose ChannelOffset groups several samples per channel (blocks), as MNE reads them."""
    import mne

    rng = np.random.default_rng(2)
    c, block, n = 4, 8, 8 * 50
    units = rng.integers(-20000, 20000, size=(c, n)).astype("<i2")
    p = tmp_path / "blocked.cnt"
    write_cnt(p, [units], ["A", "B", "C", "D"], 250, bytes_per_sample=2)
    blocked = units.reshape(c, n // block, block).transpose(1, 0, 2).ravel()  # (blocks, channels, samples)
    with open(p, "r+b") as fh:
        fh.seek(894)
        fh.write(struct.pack("<i", block * 2))
        fh.seek(900 + 75 * c)
        fh.write(blocked.tobytes())
    h = read_header(p)
    assert h.channel_offset == block
    ref = mne.io.read_raw_cnt(p, data_format="int16", verbose="error")
    ours = read_raw_neuroscan(p)
    np.testing.assert_array_equal(ours.get_data(), ref.get_data())
    np.testing.assert_array_equal(read_samples(h, [2, 0], 13, 333), units[[2, 0], 13:333])
    np.testing.assert_array_equal(read_samples(h, [1], 5, 390, chunk_bytes=64), units[[1], 5:390])


# -- tables ----------------------------------------------------------------------------------------

def test_builtin_trial_table_is_designs():
    trials = builtin_trials()
    assert len(trials) == 45 and {t.session for t in trials} == {1, 2, 3}
    first, last = trials[0], trials[-1]
    assert (first.session, first.trial, first.emotion, first.start, first.stop) == (1, 1, "happy", 30, 102)
    assert (last.session, last.trial, last.emotion, last.start, last.stop) == (3, 15, "disgust", 2888, 3066)
    s2 = [t for t in trials if t.session == 2]
    assert [t.emotion for t in s2][:5] == ["sad", "fear", "neutral", "disgust", "happy"]
    assert (s2[6].start, s2[6].stop) == (1091, 1331)
    assert all(t.start < t.stop for t in trials)
    for s in (1, 2, 3):  # trials of a session do not overlap and each emotion has three clips
        ts = sorted((t for t in trials if t.session == s), key=lambda t: t.start)
        assert all(a.stop <= b.start for a, b in zip(ts, ts[1:]))
        assert sorted(t.emotion for t in ts) == sorted(EMOTIONS * 3)


def test_trial_table_option(demo, tmp_path):
    root, _ = demo
    assert trial_table(root, {"trial_table": "auto"}) == demo_trials(clip=CLIP)  # the demo's trials.csv
    assert trial_table(root, {"trial_table": "builtin"}) == builtin_trials()
    assert trial_table(tmp_path, {"trial_table": "auto"}) == builtin_trials()  # no trials.csv: SEED-V's
    (tmp_path / "mine.csv").write_text("Session,Trial,Emotion,Start,Stop\n2,1,sad,0,5.5\n2,2,4,6,9\n")
    mine = trial_table(tmp_path, {"trial_table": "mine.csv"})
    assert [(t.session, t.trial, t.emotion, t.start, t.stop) for t in mine] == [(2, 1, "sad", 0, 5.5), (2, 2, "happy", 6, 9)]
    with pytest.raises(ConfigError, match="trial_table = 'nope.csv': file .* not found"):
        trial_table(tmp_path, {"trial_table": "nope.csv"})
    (tmp_path / "bad.csv").write_text("session,trial,emotion,start,stop\n1,1,angry,0,5\n")
    with pytest.raises(DatasetError, match="bad.csv line 2: emotion 'angry' is not one of 0–4"):
        read_trials(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("session,trial,start,stop\n1,1,0,5\n")
    with pytest.raises(DatasetError, match="no emotion column"):
        read_trials(tmp_path / "bad.csv")


def test_options(demo, tmp_path):
    root, _ = demo
    assert OPTIONS == {"trial_table": "auto", "data_format": "auto", "participants": "auto"}
    assert PLUGIN.options["data_format"].choices == ("auto", "int32", "int16")
    with pytest.raises(ConfigError, match="data_format = 'int8' is not allowed; allowed: auto, int32, int16"):
        PLUGIN.find_subjects(root, {**OPTIONS, "data_format": "int8"})
    rec = PLUGIN.find_subjects(root, OPTIONS)[0].recordings[0]
    right = PLUGIN.read_raw(rec, {**OPTIONS, "data_format": "int32"}).get_data(picks=[0], start=0, stop=100)
    np.testing.assert_array_equal(PLUGIN.read_raw(rec, OPTIONS).get_data(picks=[0], start=0, stop=100), right)
    wrong = PLUGIN.read_raw(rec, {**OPTIONS, "data_format": "int16"})  # as told, though it is not
    assert wrong.n_times == 152_000 and not np.allclose(wrong.get_data(picks=[0], start=0, stop=100), right)
    # the table by name, in EEG_raw/
    alt = tmp_path / "alt"
    (alt / "EEG_raw").mkdir(parents=True)
    for p in (root / "EEG_raw").iterdir():
        (alt / "EEG_raw" / p.name).symlink_to(p)
    (alt / "EEG_raw" / "people.csv").write_text("Subject,Sex,Age\n1,F,21\n2,M,23\n")
    with pytest.raises(DatasetError, match="no participants table in"):
        PLUGIN.find_subjects(alt, OPTIONS)
    subjects = PLUGIN.find_subjects(alt, {**OPTIONS, "participants": "people.csv"})
    assert [(s.id, s.labels["gender"]) for s in subjects] == [("1", "F"), ("2", "M")]
    # no trials.csv here: SEED-V's own table, 15 trials of session 1 and the missing sessions 2, 3
    recs = subjects[0].recordings
    assert [r.id for r in recs] == [f"s1_t{i:02d}" for i in range(1, 16)] + ["s2", "s3"]
    assert (recs[0].start, recs[0].stop, recs[0].labels) == (30.0, 102.0, {"emotion": "happy", "session": 1, "trial": 1})
    assert PLUGIN.raw_found(alt) and PLUGIN.raw_found(root) and not PLUGIN.raw_found(tmp_path)


def test_participants_tables(tmp_path):
    xlsx = tmp_path / "Participants_info.xlsx"
    write_participants_xlsx(xlsx, [("1", "Male", 22), ("2", "Female", 24), ("15", "female", 19)])
    assert read_participants(xlsx) == {"1": {"gender": "M", "age": 22}, "2": {"gender": "F", "age": 24},
                                       "15": {"gender": "F", "age": 19}}
    import openpyxl

    book = openpyxl.Workbook()  # other spellings, numbers as floats, no title row
    book.active.append(["subject ID", "GENDER", "age", "Handedness"])
    book.active.append(["sub01", "M", 23.0, "R"])
    book.active.append([2.0, "f", None, "R"])
    book.save(tmp_path / "other.xlsx")
    assert read_participants(tmp_path / "other.xlsx") == {"1": {"gender": "M", "age": 23}, "2": {"gender": "F", "age": None}}
    csv_ = tmp_path / "participants.csv"
    csv_.write_text("Subject,Sex,Age\n1,M,22\nS3,F,25\n\n")
    assert read_participants(csv_) == {"1": {"gender": "M", "age": 22}, "3": {"gender": "F", "age": 25}}
    csv_.write_text("subject\tsex\tage\n4\tmale\t30\n")
    assert read_participants(csv_) == {"4": {"gender": "M", "age": 30}}
    csv_.write_text("Subject,Age\n1,22\n")
    with pytest.raises(DatasetError, match="no header row with Subject and Sex columns"):
        read_participants(csv_)
    csv_.write_text("Subject,Sex\n1,X\n")
    with pytest.raises(DatasetError, match="row 2: sex 'X' is neither F nor M"):
        read_participants(csv_)


# -- the demo, end to end ----------------------------------------------------------------------------

def test_demo_writes_seed_v_layout(demo):
    import mne

    root, truth = demo
    names = sorted(p.name for p in (root / "EEG_raw").iterdir())
    assert names == ["1_1_20180804.cnt", "2_1_20180811.cnt", "3_1_20180818.cnt", "4_1_20180825.cnt",
                     "5_1_20180901.cnt"]
    assert read_participants(root / "Participants_info.xlsx") == {
        sid: {"gender": t["gender"], "age": t["age"]} for sid, t in truth.items()}
    raw = mne.io.read_raw_cnt(root / "EEG_raw" / names[0], verbose="error")  # MNE reads the demo files
    assert raw.ch_names == list(SEED_CHANNELS) and len(raw.ch_names) == 66
    assert raw.info["sfreq"] == 1000.0 and raw.n_times == (2 + 15 * (CLIP + 2)) * 1000
    trials = truth["1"]["trials"]
    starts = sorted(o for o, d in zip(raw.annotations.onset, raw.annotations.description) if d == "1")
    assert starts == [t.start for t in trials]
    x = raw.get_data(start=0, stop=20000) * 1e6
    assert 5 < np.std(x[:62]) < 100
    np.testing.assert_allclose(read_raw_neuroscan(root / "EEG_raw" / names[0]).get_data(start=0, stop=20000),
                               x * 1e-6, rtol=0, atol=1e-15)


def test_every_window_carries_the_written_labels(demo, processed):
    root, truth = demo
    meta = rows(processed / "metadata.csv")
    assert len(meta) == 5 * 15 * PER_TRIAL
    assert list(meta[0])[-4:] == ["emotion", "session", "trial", "caption"]
    for r in meta:
        t = truth[r["subject"]]
        assert (r["gender"], int(r["age"]), r["health"]) == (t["gender"], t["age"], "H")
        trial = t["trials"][int(r["trial"]) - 1]
        assert (r["emotion"], int(r["session"]), int(r["trial"])) == (trial.emotion, trial.session, trial.trial)
        assert r["recording"] == f"s1_t{trial.trial:02d}"
        start = float(r["start"])
        assert trial.start <= start and start + NSAMPS / FS <= trial.stop + 1e-6  # window inside its clip
        assert r["caption"].startswith(f"an EEG spectrogram of a{'n' if t['age'] in (18, 80) else ''} {t['age']} year old, healthy, ")
        assert r["caption"].endswith({"disgust": "evokes disgust", "fear": "evokes fear", "sad": "evokes sadness",
                                      "neutral": "a neutral film clip", "happy": "evokes happiness"}[trial.emotion])
    counts = {}
    for r in meta:
        counts[(r["subject"], r["trial"])] = counts.get((r["subject"], r["trial"]), 0) + 1
    assert set(counts.values()) == {PER_TRIAL} and len(counts) == 75
    info = json.loads((processed / "preprocess.json").read_text())
    assert all(s["status"] == "done" for s in info["subjects"].values())
    assert info["parameters"]["channels"] == ["FP1", "FP2", "F3", "F4", "FZ", "F7", "F8", "C3", "C4", "CZ",
                                              "P3", "P4", "PZ", "O1", "O2", "T7", "T8", "TP7", "TP8", "P8"]
    for s in info["subjects"].values():  # how the sample width was decided, once per session file
        width = [n for n in s["notes"] if "-bit samples" in n]
        assert len(width) == 1 and "32-bit samples" in width[0], s["notes"]  # as the demo writes them


def auc(a, b) -> float:
    """P(a value of ``a`` exceeds one of ``b``), ties counted half."""
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def test_emotions_shift_band_power(demo, processed):
    """The demo's effects survive into the images, at the size the ground truth drew them: neutral
    clips bring more alpha (8–13 Hz) and negative clips (sad, fear, disgust) more delta (1–3 Hz) at
    the parietal and occipital channels (each against theta, 4–7 Hz, in the same channel strip;
    Zheng, Zhu & Lu 2019). Per subject, the shift agrees in sign with the drawn gain in most
    subjects and is positive on average; the effects are small, so the windows of the emotion and
    of the other clips overlap (AUC far from 1)."""
    from PIL import Image

    from sd_core.spectrogram import log_frequencies

    root, truth = demo
    hz = log_frequencies(R) * FS  # rows 1 … R-1, flipped in the image

    def rows_in(lo, hi):
        return [R - 1 - i for i in range(1, R) if lo <= hz[i - 1] <= hi]

    bands = {b: rows_in(*v) for b, v in {"delta": (1, 3), "theta": (4, 7), "alpha": (8, 13)}.items()}
    po = [CHANNELS.index(c) for c in ("P3", "P4", "PZ", "O1", "O2", "P8")]
    frames = json.loads((processed / "preprocess.json").read_text())["parameters"]["spectrogram"]["frames"]
    x0 = (R - len(CHANNELS) * frames) // 2  # strips side by side, in channel order, centred
    values = {}  # (subject, emotion) -> [(alpha − theta, delta − theta) per window]
    for r in rows(processed / "metadata.csv"):
        img = np.asarray(Image.open(processed / r["file_name"]), dtype=float)
        strips = img[:, x0:x0 + len(CHANNELS) * frames].reshape(R, len(CHANNELS), frames)[:, po]
        level = {b: strips[idx].mean() for b, idx in bands.items()}
        values.setdefault((r["subject"], r["emotion"]), []).append(
            (level["alpha"] - level["theta"], level["delta"] - level["theta"]))
    for k, (band, emotions) in enumerate((("alpha", ("neutral",)), ("delta", ("sad", "fear", "disgust")))):
        shifts, drawn, inside, outside = [], [], [], []
        for sid, t in truth.items():
            a = [v[k] for e in emotions for v in values[(sid, e)]]
            b = [v[k] for e in EMOTIONS if e not in emotions for v in values[(sid, e)]]
            shifts.append(np.mean(a) - np.mean(b))
            drawn.append(np.mean([g["gain"] for e in emotions for g in t["effect"][e] if g["band"] == band]))
            inside += a
            outside += b
        agree = sum((s > 0) == (g > 1) for s, g in zip(shifts, drawn))
        assert agree >= 4 and np.mean(shifts) > 0, (band, shifts, drawn)
        assert 0.5 < auc(inside, outside) < 0.8, band


def test_emotion_effects_in_the_files_follow_the_truth(demo):
    """In the raw files, every drawn gain (emotion × band × region) is found again: the band's
    amplitude in the region's channels during that emotion's clips against the clips of emotions
    that leave that band and region alone. The subjects' gains spread around 1.10, some below 1,
    and the measurement follows them."""
    from scipy.signal import welch
    from sd_seed.demo import BANDS, REGIONS, STAND_INS

    from sd_core.signals.eeg_model import read_truth

    root, truth = demo
    written = read_truth(root)
    back = {v: k for k, v in STAND_INS.items()}
    drawn, found = [], []
    for stem, rec in written["recordings"].items():
        effect = truth[rec["subject"]]["effect"]
        x = read_raw_neuroscan(root / "EEG_raw" / f"{stem}.cnt").get_data()
        clips = [s for s in rec["stretches"] if s["emotion"]]
        for key in sorted({(g["band"], g["region"]) for gains in effect.values() for g in gains}):
            picks = [SEED_CHANNELS.index(back.get(s, s)) for s in REGIONS[key[1]] if back.get(s, s) in SEED_CHANNELS]
            lo, hi = BANDS[key[0]]

            def power(s):
                f, p = welch(x[picks, int(s["start"] * 1000):int(s["stop"] * 1000)], 1000, nperseg=2000)
                return p[:, (f >= lo) & (f <= hi)].mean()

            hit = {e: g["gain"] for e, gains in effect.items() for g in gains if (g["band"], g["region"]) == key}
            ref = np.mean([power(s) for s in clips if s["emotion"] not in hit])
            for e, gain in hit.items():
                drawn.append(gain)
                found.append(np.sqrt(np.mean([power(s) for s in clips if s["emotion"] == e]) / ref))
    drawn, found = np.array(drawn), np.array(found)
    assert len(drawn) == 5 * 9 and 1.05 < np.median(drawn) < 1.15 and (drawn < 1).any()
    assert np.mean((drawn > 1) == (found > 1)) >= 0.8
    assert np.median(np.abs(found - drawn)) < 0.08 and np.corrcoef(drawn, found)[0, 1] > 0.5


def test_demo_truth_sessions_and_eye_channels(demo, tmp_path):
    """The ground truth: participants half and half, every session's stretches tiling its file with
    the subject's effect; each session its own electrodes, the subject's traits in all; blinks in
    VEO and horizontal eye movements in HEO."""
    from sd_core.signals.eeg_model import read_truth

    root, truth = demo
    written = read_truth(root)
    assert sorted(t["gender"] for t in truth.values()) in (["F", "F", "M", "M", "M"], ["F", "F", "F", "M", "M"])
    assert all(19 <= t["age"] <= 28 for t in truth.values())
    rec = written["recordings"]["1_1_20180804"]
    spans = [(s["start"], s["stop"]) for s in rec["stretches"]]
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])) and spans[-1][1] == 152.0
    effect = truth["1"]["effect"]
    for s in rec["stretches"]:
        gains = [g for g in effect.get(s["emotion"], []) if g["band"] != "alpha"] if s["emotion"] else []
        assert s["band_gains"] == gains
        assert s["state"]["alpha"] == (effect["neutral"][0]["gain"] if s["emotion"] == "neutral" else 1.0)
    # eye channels: VEO rises during blinks, HEO steps during horizontal eye movements
    x = read_raw_neuroscan(root / "EEG_raw" / "1_1_20180804.cnt").get_data() * 1e6
    t = np.arange(x.shape[1]) / 1000

    def during(kind):
        m = np.zeros(x.shape[1], bool)
        for e in rec["artefacts"]:
            if e["kind"] == kind:
                m |= (t >= e["start"]) & (t < e["stop"])
        return m

    heo, veo = (x[SEED_CHANNELS.index(c)] - np.median(x[SEED_CHANNELS.index(c)]) for c in ("HEO", "VEO"))
    blink, move = during("blink"), during("eye movement")
    assert blink.any() and move.any()
    assert np.abs(veo[blink]).mean() > 2 * np.abs(veo[~blink & ~move]).mean()
    assert np.abs(heo[move]).mean() > 1.5 * np.abs(heo[~blink & ~move]).mean()
    # two sessions of one subject: the same traits and effect, new electrodes
    two = write_seed_v(tmp_path / "two", seed=1, n_subjects=1, sessions=(1, 2), clip_seconds=4.0)
    assert sorted(two["1"]["files"]) == [1, 2]
    recs = read_truth(tmp_path / "two")["recordings"]
    assert len(recs) == 2 and [r["session"] for r in recs.values()] == [1, 2]
    gains = [r["electrodes"]["gain"] for r in recs.values()]
    assert gains[0] != gains[1]
    subjects = PLUGIN.find_subjects(tmp_path / "two", OPTIONS)
    assert [r.id for r in subjects[0].recordings] == [f"s{s}_t{i:02d}" for s in (1, 2) for i in range(1, 16)]


# -- bad inputs ------------------------------------------------------------------------------------

def test_missing_participants_table(demo, tmp_path):
    root = copy_demo(demo[0], tmp_path / "raw", ["1"])
    (root / "Participants_info.xlsx").unlink()
    with pytest.raises(DatasetError, match="no participants table in .*SEED-V ships Participants_info.xlsx") as e:
        preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert len(str(e.value).splitlines()) == 1
    res = run_sd("preprocess", "--dataset", "seed", "--raw", str(root), "--output", str(tmp_path / "o2"))
    assert res.returncode == 1
    assert "no participants table" in res.stderr and "Traceback" not in res.stderr


def test_table_and_files_that_do_not_match(demo, tmp_path, caplog):
    root = copy_demo(demo[0], tmp_path / "raw", ["1", "2"])
    write_participants_xlsx(root / "Participants_info.xlsx", [("1", "Female", 21), ("6", "Male", 30)])
    with caplog.at_level(logging.WARNING):
        res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert "subject(s) 2 have no row in the participants table and are left out" in caplog.text
    assert {r.subject: r.status for r in res.results} == {"1": "done", "6": "failed"}
    assert res.errors == [f"6/s1: no file 6_1_<date>.cnt for session 1 in {root / 'EEG_raw'}"]
    assert sum(res.images.values()) == 15 * PER_TRIAL


def test_damaged_cnt_files_are_reported_and_the_others_finish(demo, tmp_path):
    root = copy_demo(demo[0], tmp_path / "raw", ["1", "2", "3"])
    (root / "EEG_raw" / "2_1_20180811.cnt").write_text("this is not a Neuroscan file\n" * 100)
    trunc = root / "EEG_raw" / "3_1_20180818.cnt"
    data = trunc.read_bytes()
    keep = 900 + 75 * 66 + 95_000 * 66 * 4  # the first 95 s of samples
    trunc.write_bytes(data[:keep])
    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert {r.subject: r.status for r in res.results} == {"1": "done", "2": "failed", "3": "partial"}
    assert all(len(e.splitlines()) == 1 for e in res.errors)
    bad = [e for e in res.errors if e.startswith("2/")]
    assert len(bad) == 15 and bad[0] == ("2/s1_t01: 2_1_20180811.cnt: not a Neuroscan CNT file (header says "
                                         "8302 channels at 29706 Hz; the file has 2900 bytes)")
    cut = [e for e in res.errors if e.startswith("3/")]
    # trials ending after 95 s (+1 s tolerance) are refused; trial 10 (92–100 s) is one of them
    assert [e.split(":")[0] for e in cut] == [f"3/s1_t{i:02d}" for i in range(10, 16)]
    assert cut[0] == ("3/s1_t10: 3_1_20180818.cnt: trial 10 (92–100 s) runs past the end of the recording "
                      "(95.0 s); the file is truncated or the trial table does not fit it")
    meta = rows(tmp_path / "out" / "metadata.csv")
    assert len(meta) == (15 + 9) * PER_TRIAL
    assert {r["trial"] for r in meta if r["subject"] == "3"} == {str(i) for i in range(1, 10)}


# -- a full-size SEED-V session --------------------------------------------------------------------

FULL_SAMPLES = 3_400_000  # 3400 s at 1000 Hz, as long as a SEED-V session
TRIAL = (1271.0, 1568.0)  # session 1, trial 7: the longest clip (297 s)


def pattern(start: int, stop: int, rows_: np.ndarray) -> np.ndarray:
    """The integer sample values of the full-size file: known everywhere without storing them."""
    s = np.arange(start, stop, dtype=np.int64)
    return (s[None, :] * 7 + rows_[:, None].astype(np.int64) * 1000) % 20001 - 10000


@pytest.fixture(scope="module")
def full_size_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("full") / "1_1_20180804.cnt"
    rows_ = np.arange(len(SEED_CHANNELS))

    def chunks():
        for a in range(0, FULL_SAMPLES, 50_000):
            yield pattern(a, min(a + 50_000, FULL_SAMPLES), rows_).astype(np.int32)

    t0 = time.monotonic()
    # NumSamples as SEED-V's headers have it (4294966564 unsigned, −732 signed)
    write_cnt(path, chunks(), SEED_CHANNELS, 1000, header_n_samples=-732)
    yield path, time.monotonic() - t0
    path.unlink()


@pytest.mark.slow
def test_full_size_session(full_size_file):
    """A 66-channel, 3.4 M-sample int32 session (≈ 900 MB): sized, read one trial at a time with
    memory far below the file size, and the numpy-2 overflow of older MNE readers reproduced."""
    import mne

    path, write_seconds = full_size_file
    size = path.stat().st_size
    assert size == 900 + 75 * 66 + FULL_SAMPLES * 66 * 4 + 9

    # 1. The overflow of MNE ≤ 1.11 (mne-python #13547, torcheeg #145): its _get_cnt_info read
    #    NumSamples as uint32 (4294966564) and EventTablePos as a numpy int32, then computed
    #    `data_size // (n_samples * n_channels)`. Under numpy 2 (NEP 50) the Python-int product
    #    283467793224 is cast to int32 and raises.
    with open(path, "rb") as fh:
        fh.seek(370)
        n_channels = np.fromfile(fh, dtype="<u2", count=1).item()
        fh.seek(864)
        n_samples = np.fromfile(fh, dtype="<u4", count=1).item()
        fh.seek(886)
        (event_offset,) = np.frombuffer(fh.read(4), dtype="<i4")
    data_size = event_offset - (900 + 75 * n_channels)
    assert n_samples * n_channels == 283467793224
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        with pytest.raises(OverflowError, match="283467793224 out of bounds for int32"):
            data_size // (n_samples * n_channels)
    # The installed MNE no longer overflows, but cannot size such a header without being told:
    try:
        mne.io.read_raw_cnt(path, verbose="error")
    except RuntimeError as exc:
        assert "Could not automatically compute number of bytes per sample" in str(exc)

    # 2. The plugin's reader sizes it and agrees with MNE told the format (on a 10 s span)
    header = read_header(path)
    assert (header.bytes_per_sample, header.n_samples, header.n_channels) == (4, FULL_SAMPLES, 66)
    ref = mne.io.read_raw_cnt(path, data_format="int32", verbose="error")
    picks = [0, 27, 61]
    ours = read_raw_neuroscan(path).get_data(picks=picks, start=3_000_000, stop=3_010_000)
    np.testing.assert_array_equal(ours, ref.get_data(picks=picks, start=3_000_000, stop=3_010_000))
    np.testing.assert_allclose(ours, pattern(3_000_000, 3_010_000, np.array(picks)) * UNIT32, rtol=1e-12)

    # 3. One trial through the plugin and the core, in a fresh process: peak memory stays near the
    #    size of that trial's 20 picked channels (2 × 47.5 MB as float64), far below the file.
    script = textwrap.dedent(f"""
        import json, os, resource, sys, time
        import numpy as np
        from pathlib import Path
        from sd_core.dataset import Recording
        from sd_core.preprocess.subject import read_span
        from sd_seed.plugin import SeedDataset
        import mne  # imported before the baseline is taken
        # ru_maxrss of a process started from pytest includes pytest's own peak (Linux carries the
        # old memory's high-water mark across exec); a forked child starts its count afresh.
        if os.fork():
            _, status = os.wait()
            sys.exit(os.waitstatus_to_exitcode(status))
        plugin = SeedDataset()
        options = {{k: o.default for k, o in plugin.options.items()}}
        rec = Recording("s1_t07", Path({str(path)!r}), {{}}, start={TRIAL[0]}, stop={TRIAL[1]})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.monotonic()
        data, fs, t = read_span(plugin, rec, list(plugin.channels), options)
        seconds = time.monotonic() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        names = [n.upper() for n in {list(SEED_CHANNELS)!r}]
        rows = np.array([names.index(c.upper()) for c in plugin.channels])
        s = np.arange({int(TRIAL[0] * 1000)}, {int(TRIAL[1] * 1000)}, dtype=np.int64)
        expected = ((s[None, :] * 7 + rows[:, None] * 1000) % 20001 - 10000) * {UNIT32 * 1e6!r}
        print(json.dumps({{"shape": list(data.shape), "fs": fs, "t0": t, "before": before, "peak": peak,
                          "seconds": seconds, "max_error": float(np.abs(data - expected).max())}}), flush=True)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["shape"] == [20, 297_000] and got["fs"] == 1000.0 and got["t0"] == TRIAL[0]
    assert got["max_error"] < 1e-9 * 100  # µV, to float64 rounding
    trial_bytes = 20 * 297_000 * 8
    assert got["peak"] - got["before"] < 3 * trial_bytes  # the span, the core's µV copy, one chunk
    assert got["peak"] < size / 4, got
    print(f"full-size file: {size / 1e6:.0f} MB written in {write_seconds:.1f} s; one trial read in "
          f"{got['seconds']:.2f} s with peak RSS {got['peak'] / 1e6:.0f} MB "
          f"(+{(got['peak'] - got['before']) / 1e6:.0f} MB for the read)")
