"""sd-chbmit (CHB-MIT): WFDB sidecars, summary files, montages, seizure labels, the demo, bad inputs."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, small_prep
from sd_chbmit.annotations import (
    AnnotationError,
    encode_annotations,
    parse_annotations,
    read_seizure_file,
    seizure_intervals,
    write_seizure_file,
)
from sd_chbmit.demo import (
    CASES,
    CHANGED,
    CLEAR_S,
    MONTAGE,
    recording_signal,
    write_chbmit,
    write_edf,
)
from sd_chbmit.plugin import ChbmitDataset
from sd_chbmit.summary import parse_subject_info, parse_summary

from sd_core.dataset import Recording
from sd_core.errors import ConfigError, DatasetError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.subject import read_span
from sd_core.signals.eeg_model import read_truth
from sd_core.signals.seizures import PATTERNS

PLUGIN = ChbmitDataset()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {k: o.default for k, o in PLUGIN.options.items()}
FS, NSAMPS, R = 128.0, 512, 128  # 4 s windows every 2 s
WIN = NSAMPS / FS

README_SUMMARY = """\
File Name: chb01_03.edf
File Start Time: 13:43:04
File End Time: 14:43:04
Number of Seizures in File: 1
Seizure Start Time: 2996 seconds
Seizure End Time: 3036 seconds

File Name: chb04_28.edf
File Start Time: 23:58:05
File End Time: 03:58:05
Number of Seizures in File: 2
Seizure 1 Start Time: 1679 seconds
Seizure 1 End Time: 1781 seconds
Seizure 2 Start Time: 3782 seconds
Seizure 2 End Time: 3898 seconds
"""


def prep(**kw):
    return small_prep(**{"fs": FS, "nsamps": NSAMPS, "resolution": R, **kw})


rows = read_rows


def expected_seizure(start: float, seizures, frac: float = 0.5) -> int:
    covered = sum(max(0.0, min(start + WIN, b) - max(start, a)) for a, b in seizures)
    return int(covered >= frac * WIN - 1e-9)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw") / "chbmit"
    truth = write_chbmit(root, seed=5)
    return root, truth


@pytest.fixture(scope="module")
def processed(demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "chbmit"
    res = preprocess_dataset(PLUGIN, demo[0], out, prep(), CHANNELS, OPTIONS)
    assert not res.errors, res.errors
    return out


def copy_demo(demo, dest: Path, cases=None) -> Path:
    root, truth = demo
    shutil.copytree(root, dest, ignore=(None if cases is None else
                                        lambda d, names: [n for n in names if n.startswith("chb") and
                                                          Path(d) == root and n not in cases]))
    return dest


# -- real files ------------------------------------------------------------------------------------

def test_real_seizure_sidecar(real_data):
    path = real_data / "chbmit" / "chb06_04.edf.seizures"
    assert read_seizure_file(path) == [(327.0, 347.0), (6211.0, 6231.0)]
    anns = parse_annotations(path.read_bytes())
    marks = [(a.sample, a.code) for a in anns if a.code not in (0, 22)]
    assert marks == [(83712, 32), (88832, 33), (1590016, 32), (1595136, 33)]
    assert anns[0].aux == b"## time resolution: 256"
    # our writer (used by the demo) gives the very same bytes
    ours = encode_annotations([(83712, 32), (88832, 33), (1590016, 32), (1595136, 33)], 256)
    assert ours == path.read_bytes()


def test_real_edf_through_the_loading_path(real_data):
    path = real_data / "edf" / "test_reduced.edf"
    raw = PLUGIN.read_raw(Recording("test_reduced", path), OPTIONS)
    names = [PLUGIN.channel_name(n) for n in raw.ch_names]
    assert len(names) == 139 and len(set(names)) == 139
    assert raw.info["sfreq"] == 512.0 and raw.n_times == 3072


def test_readme_summary_examples(tmp_path):
    path = tmp_path / "chb01-summary.txt"
    path.write_text(README_SUMMARY)
    s = parse_summary(path.read_text(), path.name)
    assert list(s.files) == ["chb01_03.edf", "chb04_28.edf"]
    a, b = s.files["chb01_03.edf"], s.files["chb04_28.edf"]
    assert a.seizures == [(2996.0, 3036.0)] and a.declared == 1 and not a.problems
    assert a.start_time == "13:43:04" and a.end_time == "14:43:04"
    assert b.seizures == [(1679.0, 1781.0), (3782.0, 3898.0)] and b.declared == 2 and not b.problems


def test_summary_montages_and_problems():
    text = """Data Sampling Rate: 256 Hz
*************************

Channels in EDF Files:
**********************
Channel 1: FP1-F7
Channel 2: T8-P8
Channel 3: T8-P8

File Name: chb13_01.edf
Number of Seizures in File: 0

Channels changed:
*****************
Channel 1: FP1-F7
Channel 2: -
Channel 3: T8-P8

File Name: chb13_02.edf
Number of Seizures in File: 1
Seizure 1 Start Time:  10 seconds
Seizure 1 End Time:   30 seconds

File Name: chb13_03.edf
Number of Seizures in File: 2
Seizure 1 Start Time: 100 seconds
Seizure 1 End Time: 90 seconds
Seizure 2 Start Time: 200 seconds

File Name: chb13_04.edf
Number of Seizures in File: 2
Seizure Start Time: 5 seconds
Seizure End Time: 9 seconds
"""
    s = parse_summary(text, "chb13-summary.txt")
    assert s.rate == 256.0 and s.channels == ("FP1-F7", "T8-P8", "T8-P8")
    assert s.files["chb13_01.edf"].channels == ("FP1-F7", "T8-P8", "T8-P8")
    assert s.files["chb13_02.edf"].channels == ("FP1-F7", "-", "T8-P8")
    assert s.files["chb13_02.edf"].seizures == [(10.0, 30.0)]
    assert s.files["chb13_03.edf"].problems == [
        "chb13-summary.txt: chb13_03.edf: seizure 1 ends (90 s) before it starts (100 s)",
        "chb13-summary.txt: chb13_03.edf: seizure 2 has no end time"]
    assert s.files["chb13_04.edf"].problems == [
        "chb13-summary.txt: chb13_04.edf: says 2 seizure(s) but gives times of 1"]


def test_subject_info():
    text = "Case\tGender\tAge (years)\n\nchb01\tF\t11\nchb06  F   1.5\nchb10\tM\t3\nchb24\t\t\n"
    assert parse_subject_info(text) == {"chb01": ("F", 11), "chb06": ("F", 1), "chb10": ("M", 3),
                                        "chb24": (None, None)}


def test_annotation_codes_round_trip_and_corruption():
    # short intervals (no SKIP), NUM/SUB/CHN modifiers and an odd-length AUX text
    words = [(28 << 10) | 100, (60 << 10) | 3, (61 << 10) | 2, (62 << 10) | 1, (63 << 10) | 3]
    data = struct.pack("<5H", *words) + b"(N\0\0" + struct.pack("<HH", (32 << 10) | 1000, (33 << 10) | 24) + b"\0\0"
    anns = parse_annotations(data)
    assert [(a.sample, a.code, a.num, a.sub, a.chan, a.aux) for a in anns] == [
        (100, 28, 3, 2, 1, b"(N\0"), (1100, 32, 0, 0, 0, b""), (1124, 33, 0, 0, 0, b"")]
    # a file without a resolution note: times at 256 Hz; pairs after the first mark
    spans, fs = seizure_intervals(encode_annotations([(512, 32), (1024, 33), (2000, 32), (90000, 33)]))
    assert fs == 256.0 and spans == [(2.0, 4.0), (2000 / 256, 90000 / 256)]
    good = encode_annotations([(512, 32), (1024, 33)], 512)
    assert seizure_intervals(good) == ([(1.0, 2.0)], 512.0)
    with pytest.raises(AnnotationError, match="end-of-file"):
        parse_annotations(good[:-2])
    with pytest.raises(AnnotationError, match="not onset/offset pairs"):
        seizure_intervals(encode_annotations([(512, 32)]))


# -- labels and options ------------------------------------------------------------------------------

def test_overlap_rule_and_long_seizures():
    rec = Recording("r", Path("r.edf"), extra={"seizures": ((10.0, 30.0),)})
    spans = [(s, s + 4.0) for s in np.arange(0.0, 40.0, 2.0)]
    got = [lab["seizure"] for lab in PLUGIN.label_windows(rec, spans, {**OPTIONS, "seizure_overlap": 0.5})]
    # windows starting at 8…28 s overlap the seizure by ≥ 2 s
    assert got == [int(8 <= s <= 28) for s, _ in spans]
    full = [lab["seizure"] for lab in PLUGIN.label_windows(rec, spans, {**OPTIONS, "seizure_overlap": 1.0})]
    assert full == [int(10 <= s <= 26) for s, _ in spans]  # wholly inside: still seizures
    anyo = [lab["seizure"] for lab in PLUGIN.label_windows(rec, spans, {**OPTIONS, "seizure_overlap": 0.25})]
    assert anyo == [int(7 <= s <= 29) for s, _ in spans]


def test_cap_on_nonseizure_windows():
    spans = [(float(s), s + 4.0) for s in range(0, 200, 2)]  # 100 windows
    rec = Recording("r", Path("r.edf"), extra={"seizures": ((50.0, 60.0),)})
    opts = {**OPTIONS, "max_nonseizure_ratio": 2.0}
    labs = PLUGIN.label_windows(rec, spans, opts)
    kept = [i for i, lab in enumerate(labs) if lab is not None]
    seizure = [i for i in kept if labs[i]["seizure"]]
    assert seizure == list(range(24, 30)) and len(kept) == 6 + 12  # starts 48…58 s
    others = [i for i in kept if not labs[i]["seizure"]]
    assert others[0] < 10 and others[-1] > 85 and min(np.diff(others)) >= 5  # spread over the recording
    assert PLUGIN.label_windows(rec, spans, opts) == labs  # deterministic
    free = Recording("f", Path("f.edf"), extra={"seizures": ()})
    assert sum(lab is not None for lab in PLUGIN.label_windows(free, spans, opts)) == 10
    assert sum(lab is not None for lab in PLUGIN.label_windows(
        free, spans, {**opts, "seizure_free_windows": 0})) == 0
    assert all(lab is not None for lab in PLUGIN.label_windows(free, spans, OPTIONS))  # default: no cap
    assert OPTIONS["max_nonseizure_ratio"] == 0.0 and OPTIONS["seizure_overlap"] == 0.5


def test_bad_option_values(demo):
    for key, value, msg in [("seizure_overlap", 0, "seizure_overlap must be a fraction"),
                            ("max_nonseizure_ratio", -1, "max_nonseizure_ratio must be ≥ 0"),
                            ("seizure_source", "notes", "allowed: both, summary, sidecars")]:
        with pytest.raises(ConfigError, match=msg):
            PLUGIN.find_subjects(demo[0], {**OPTIONS, key: value})


def test_chb21_is_chb01_later(tmp_path):
    (tmp_path / "SUBJECT-INFO").write_text("Case\tGender\tAge (years)\nchb01\tF\t11\nchb21\tF\t13\n")
    for case in ("chb01", "chb21"):
        (tmp_path / case).mkdir()
        (tmp_path / case / f"{case}_01.edf").write_bytes(b"")
    joined = PLUGIN.find_subjects(tmp_path, OPTIONS)
    assert [s.id for s in joined] == ["chb01"]
    assert [(r.id, dict(r.labels)) for r in joined[0].recordings] == [("chb01_01", {}), ("chb21_01", {"age": 13})]
    apart = PLUGIN.find_subjects(tmp_path, {**OPTIONS, "join_chb21": False})
    assert [(s.id, s.labels["age"]) for s in apart] == [("chb01", 11), ("chb21", 13)]


# -- the demo, end to end ----------------------------------------------------------------------------

def test_demo_layout_and_montages(demo):
    root, truth = demo
    assert (root / "SUBJECT-INFO").read_text().splitlines()[:2] == ["Case\tGender\tAge (years)", "chb01\tF\t11"]
    assert (root / "chb17" / "chb17a_03.edf").is_file()
    for case, t in truth.items():
        s = parse_summary((root / case / f"{case}-summary.txt").read_text())
        assert {n: e.seizures for n, e in s.files.items()} == {f"{r}.edf": sz for r, sz in t["recordings"].items()}
        for rec, sz in t["recordings"].items():
            side = root / case / f"{rec}.edf.seizures"
            assert side.is_file() == bool(sz) and (not sz or read_seizure_file(side) == sz)
    text = (root / "chb04" / "chb04-summary.txt").read_text()
    assert f"Seizure 2 Start Time: {truth['chb04']['recordings']['chb04_28'][1][0]:g} seconds" in text
    chb06 = parse_summary((root / "chb06" / "chb06-summary.txt").read_text())
    assert chb06.files["chb06_04.edf"].channels == CHANGED and chb06.channels == MONTAGE
    # the changed montage: "-" dummies and a duplicate T8-P8 in the file; read back by name
    import mne

    edf = mne.io.read_raw_edf(root / "chb06" / "chb06_04.edf", preload=True, verbose="error")
    assert edf.ch_names.count("--0") == 1 and "T8-P8-1" in edf.ch_names
    rec = next(r for s in PLUGIN.find_subjects(root, OPTIONS) if s.id == "chb06" for r in s.recordings
               if r.id == "chb06_04")
    raw = PLUGIN.read_raw(rec, OPTIONS)
    # dummies dropped; both T8-P8 kept under MNE's names (the image lists T8-P8 twice)
    assert raw.ch_names == [c if c != "T8-P8" else f"T8-P8-{CHANGED[:i].count(c)}"
                            for i, c in enumerate(CHANGED) if c != "-"]
    data, fs, _ = read_span(PLUGIN, rec, ["T8-P8", "FZ-CZ", "T8-P8"], OPTIONS)
    first = edf.get_data(picks=[CHANGED.index("T8-P8")])[0] * 1e6
    assert fs == 256.0 and np.allclose(data[0], first)
    assert np.allclose(data[2], edf.get_data(picks=["T8-P8-1"])[0] * 1e6)
    assert not np.allclose(data[0], data[2])
    assert np.corrcoef(data[0], data[2])[0, 1] > 0.95  # the same derivation, apart from amplifier noise


def test_every_window_carries_the_written_labels(demo, processed):
    root, truth = demo
    meta = rows(processed / "metadata.csv")
    seconds = {r.lstrip("*"): sec for _, _, recs in CASES.values() for r, sec, _ in recs}
    n_windows = 0
    by_rec: dict[str, list[dict]] = {}
    for r in meta:
        by_rec.setdefault(r["recording"], []).append(r)
    for case, t in truth.items():
        for rec, sz in t["recordings"].items():
            got = by_rec[rec]
            assert len(got) == (int(seconds[rec] * FS) - NSAMPS) // (NSAMPS // 2) + 1
            n_windows += len(got)
            for r in got:
                assert r["subject"] == case and r["gender"] == t["gender"] and int(r["age"]) == t["age"]
                assert int(r["seizure"]) == expected_seizure(float(r["start"]), sz), (rec, r["start"])
            if sz:  # every seizure has its windows
                for a, b in sz:
                    assert any(r["seizure"] == "1" and a <= float(r["start"]) + WIN / 2 <= b for r in got)
    assert n_windows == len(meta)
    n_seizures = sum(len(sz) for t in truth.values() for sz in t["recordings"].values())
    assert n_seizures >= 3
    assert 0.002 < sum(r["seizure"] == "1" for r in meta) / len(meta) < 0.05  # rare, as in CHB-MIT
    one = next(r for r in meta if r["seizure"] == "1" and r["subject"] == "chb06")
    assert one["caption"] == "an EEG spectrogram of a 1 year old, female subject with epilepsy, during a seizure"
    info = json.loads((processed / "preprocess.json").read_text())
    assert all(s["status"] == "done" for s in info["subjects"].values())
    assert info["columns"][-2:] == ["seizure", "caption"]


def test_seizure_windows_look_different(demo, processed):
    """Each case's seizures light the rows of its own onset pattern's frequencies (from its onset
    to its end frequency) above its other windows, though far less cleanly than a uniform 3 Hz
    discharge would: seizures are focal, most derivations miss them, and look-alikes interfere."""
    from PIL import Image

    from sd_core.spectrogram import log_frequencies

    freqs = log_frequencies(R) * FS

    def row(hz):
        return R - 1 - (1 + int(np.argmin(np.abs(freqs - hz))))

    meta = rows(processed / "metadata.csv")
    effects = []
    for case, t in demo[1].items():
        p = t["pattern"]
        lo, hi = min(p["start_hz"], p["end_hz"]) * 0.8, min(max(p["start_hz"], p["end_hz"]) * 1.25, FS / 2 - 1)
        band = slice(row(hi), row(lo) + 1)
        contrast = {"0": [], "1": []}
        for r in meta:
            if r["subject"] == case:
                img = np.asarray(Image.open(processed / r["file_name"]), dtype=float)
                contrast[r["seizure"]].append(img[band].mean() - img.mean())
        if contrast["1"]:
            effects.append((np.median(contrast["1"]) - np.median(contrast["0"]), np.mean(contrast["1"])
                            - np.mean(contrast["0"])))
    assert len(effects) >= 2
    assert sum(med > 0 for med, _ in effects) >= len(effects) - 1  # most cases show their pattern
    assert np.mean([mean for _, mean in effects]) > 2.0  # grey levels


def test_ground_truth_patterns_lookalikes_and_montage(demo):
    """sd-demo-truth.json: one pattern and a paediatric IAF shift per case, every recording's
    seizures (as the summary gives them) and look-alikes clear of them; the derivations are
    differences of electrodes, so the two chains from FP1 to O1 add up to the same signal."""
    import mne

    root, truth = demo
    gt = read_truth(root)
    assert set(gt["subjects"]) == set(truth)
    for case, s in gt["subjects"].items():
        assert s["pattern"]["kind"] in PATTERNS and s["pattern"] == truth[case]["pattern"]
        age, iaf = CASES[case][1], s["traits"]["iaf"]
        assert s["iaf_shift"] == pytest.approx(0.0 if age >= 18 else max(-0.17 * (18 - age), 6.5 - iaf), abs=1e-3)
    kinds = set()
    for rec, r in gt["recordings"].items():
        sz = truth[r["case"]]["recordings"][rec]
        assert [tuple(x) for x in r["seizures"]] == sz and "artefacts" in r and "electrodes" in r
        for e in r["lookalikes"]:
            kinds.add(e["kind"])
            assert all(e["stop"] + CLEAR_S <= a or e["start"] >= b + CLEAR_S for a, b in sz)
    assert kinds == {"chewing", "movement"}
    edf = mne.io.read_raw_edf(root / "chb01" / "chb01_03.edf", preload=True, verbose="error")
    x = {name: edf.get_data(picks=[i])[0] * 1e6 for i, name in enumerate(MONTAGE) if name != "T8-P8"}
    outer = x["FP1-F7"] + x["F7-T7"] + x["T7-P7"] + x["P7-O1"]
    inner = x["FP1-F3"] + x["F3-C3"] + x["C3-P3"] + x["P3-O1"]
    assert np.std(outer - inner) < 0.1 * np.std(outer)


def test_capped_run_keeps_all_seizure_windows(demo, processed, tmp_path):
    out = tmp_path / "capped"
    opts = {**OPTIONS, "max_nonseizure_ratio": 1.0, "seizure_free_windows": 3}
    res = preprocess_dataset(PLUGIN, demo[0], out, prep(), CHANNELS, opts)
    assert not res.errors
    full, capped = rows(processed / "metadata.csv"), rows(out / "metadata.csv")
    for rec, truth_rows in _group(full).items():
        got = _group(capped).get(rec, [])
        n_sz = sum(r["seizure"] == "1" for r in truth_rows)
        assert sum(r["seizure"] == "1" for r in got) == n_sz
        assert sum(r["seizure"] == "0" for r in got) == (n_sz if n_sz else 3)
        full_by_window = {r["window"]: r for r in truth_rows}
        for r in got:  # kept windows keep their index, start and label
            assert {k: r[k] for k in ("start", "seizure")} == {k: full_by_window[r["window"]][k]
                                                               for k in ("start", "seizure")}


def _group(meta):
    out: dict[str, list[dict]] = {}
    for r in meta:
        out.setdefault(r["recording"], []).append(r)
    return out


# -- two sources of seizure times ----------------------------------------------------------------------

def test_summary_and_sidecar_must_agree(demo, tmp_path):
    root = copy_demo(demo, tmp_path / "raw")
    ((a1, b1),) = demo[1]["chb01"]["recordings"]["chb01_03"]
    ((a2, b2),) = demo[1]["chb06"]["recordings"]["chb06_01"]
    # within 1 s: accepted, the sidecar's sample-exact times are used
    write_seizure_file(root / "chb01" / "chb01_03.edf.seizures", [(a1 + 0.5, b1 - 0.75)])
    # 10 s off: the recording is refused with both versions in the message
    write_seizure_file(root / "chb06" / "chb06_01.edf.seizures", [(a2 + 10.0, b2)])
    subjects = {s.id: s for s in PLUGIN.find_subjects(root, OPTIONS)}
    rec1 = next(r for r in subjects["chb01"].recordings if r.id == "chb01_03")
    assert rec1.extra["seizures"] == ((a1 + 0.5, b1 - 0.75),) and not rec1.extra["problems"]
    rec2 = next(r for r in subjects["chb06"].recordings if r.id == "chb06_01")
    assert rec2.extra["problems"] == (
        f'seizure times disagree: chb06-summary.txt says {a2:g}–{b2:g} s, chb06_01.edf.seizures says '
        f'{a2 + 10:g}–{b2:g} s; set seizure_source = "summary" or "sidecars" to use one',)
    with pytest.raises(DatasetError, match="seizure times disagree"):
        PLUGIN.read_raw(rec2, OPTIONS)
    for source, expect in (("summary", (a2, b2)), ("sidecars", (a2 + 10.0, b2))):
        subs = {s.id: s for s in PLUGIN.find_subjects(root, {**OPTIONS, "seizure_source": source})}
        rec = next(r for r in subs["chb06"].recordings if r.id == "chb06_01")
        assert rec.extra["seizures"] == (expect,) and not rec.extra["problems"]


# -- bad inputs ------------------------------------------------------------------------------------

def test_missing_subject_info_is_a_dataset_error(demo, tmp_path):
    root = copy_demo(demo, tmp_path / "raw", cases=["chb01"])
    (root / "SUBJECT-INFO").unlink()
    with pytest.raises(DatasetError, match="SUBJECT-INFO not found in .*gender and age") as e:
        preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert len(str(e.value).splitlines()) == 1


def test_bad_recordings_are_reported_and_the_others_finish(demo, tmp_path):
    root = copy_demo(demo, tmp_path / "raw")
    # a summary naming a recording that is not there
    summary = root / "chb02" / "chb02-summary.txt"
    summary.write_text(summary.read_text() + "File Name: chb02_99.edf\nNumber of Seizures in File: 0\n")
    # a truncated EDF
    edf = root / "chb04" / "chb04_05.edf"
    edf.write_bytes(edf.read_bytes()[: edf.stat().st_size // 3])
    # a recording whose montage lacks FZ-CZ
    rng = np.random.default_rng(0)
    montage = tuple(c for c in MONTAGE if c != "FZ-CZ")
    write_edf(root / "chb17" / "chb17c_13.edf", recording_signal(rng, montage, 30, "F", []), montage)

    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    status = {r.subject: r.status for r in res.results}
    assert status == {"chb01": "done", "chb02": "partial", "chb04": "partial", "chb06": "done", "chb17": "partial"}
    errors = sorted(res.errors)
    assert len(errors) == 3 and all(len(e.splitlines()) == 1 for e in errors)
    assert errors[0] == f"chb02/chb02_99: chb02_99.edf is listed in chb02-summary.txt but missing from {root / 'chb02'}"
    records = int(dict((r, sec) for r, sec, _ in CASES["chb04"][2])["chb04_05"])
    assert errors[1].startswith("chb04/chb04_05: chb04_05.edf: truncated EDF (") and f"of {records} data records" in errors[1]
    assert errors[2].startswith("chb17/chb17c_13: chb17c_13.edf lacks channel(s) FZ-CZ (has 22: FP1-F7,")
    meta = rows(tmp_path / "out" / "metadata.csv")
    assert {r["recording"] for r in meta} == {r for t in demo[1].values() for r in t["recordings"]} - {"chb04_05"}
