"""sd-math (PhysioNet EEGMAT): reading, labels, options, the demo writer and bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, run_sd, small_prep
from sd_math.demo import write_eegmat
from sd_math.plugin import MathDataset, read_subject_info

from sd_core.dataset import Recording
from sd_core.errors import ConfigError, DatasetError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.subject import read_span

PLUGIN = MathDataset()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {"states": "both"}
FS, NSAMPS, R = 125.0, 500, 128  # 4 s windows every 2 s


def prep(**kw):
    return small_prep(**{"fs": FS, "nsamps": NSAMPS, "resolution": R, **kw})


rows = read_rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw") / "math"
    truth = write_eegmat(root, seed=3)
    return root, truth


@pytest.fixture(scope="module")
def processed(demo, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "math"
    res = preprocess_dataset(PLUGIN, demo[0], out, prep(), CHANNELS, OPTIONS)
    assert not res.errors
    return out


# -- reading real files ----------------------------------------------------------------------------

def test_real_edf_through_the_loading_path(real_data):
    path = real_data / "edf" / "test_reduced.edf"
    raw = PLUGIN.read_raw(Recording("test_reduced", path), OPTIONS)
    names = [PLUGIN.channel_name(n) for n in raw.ch_names]
    assert len(names) == 139 and len(set(names)) == 139
    assert raw.info["sfreq"] == 512.0 and raw.n_times == 3072
    assert names[:3] == ["A1", "A2", "A3"] and names[-1] == "Status"
    data = raw.get_data(picks=[0], start=0, stop=3072)
    assert data.shape == (1, 3072) and np.isfinite(data).all()


def test_channel_names_of_eegmat():
    assert PLUGIN.channel_name("EEG Fp1") == "Fp1"
    assert PLUGIN.channel_name("EEG T3") == "T3"
    assert PLUGIN.channel_name("EEG A2-A1") == "A2-A1"
    assert PLUGIN.channel_name("ECG ECG") == "ECG"


def test_subject_info_columns_are_matched_loosely(tmp_path):
    table = tmp_path / "subject-info.csv"
    table.write_text(" subject , AGE,Gender , Recording  year,Number of subtractions, count  quality \n"
                     "Subject00, 21 , F ,2011,9.7,0\n"
                     "Subject01,18,M,2012,29,1\n"
                     "\n"
                     "Subject02,,m,2012,14.5,\n")
    info = read_subject_info(table)
    assert info == {
        "Subject00": {"gender": "F", "age": 21, "count_quality": 0},
        "Subject01": {"gender": "M", "age": 18, "count_quality": 1},
        "Subject02": {"gender": "M", "age": None, "count_quality": None},
    }
    table.write_text("Subject,Gender\nSubject00,F\n")
    with pytest.raises(DatasetError, match="no 'Age' column"):
        read_subject_info(table)
    table.write_text("Subject,Age,Gender\nSubject00,21,X\n")
    with pytest.raises(DatasetError, match="line 2: gender 'X'"):
        read_subject_info(table)
    # a ragged row (a field missing) would shift labels: refused with its line (issue 31)
    table.write_text("Subject,Age,Gender,Count quality\nSubject00,21,F,1\nSubject01,18,1\n")
    with pytest.raises(DatasetError, match=r"subject-info.csv line 3: 3 fields where the header has 4"):
        read_subject_info(table)
    table.write_text("Subject,Age,Gender\nSubject00,21,F,,\n")  # trailing empty fields: fine
    assert read_subject_info(table) == {"Subject00": {"gender": "F", "age": 21, "count_quality": None}}


# -- the demo, end to end ----------------------------------------------------------------------------

def test_demo_writes_eegmat_layout(demo):
    root, truth = demo
    assert (root / "subject-info.csv").read_text().splitlines()[0] == \
        "Subject,Age,Gender,Recording year,Number of subtractions,Count quality"
    assert sorted(p.name for p in root.glob("*.edf")) == sorted(
        f"Subject{i:02d}_{k}.edf" for i in range(8) for k in (1, 2))
    import mne

    raw = mne.io.read_raw_edf(root / "Subject00_2.edf", verbose="error")
    assert raw.info["sfreq"] == 500.0 and raw.n_times == 60 * 500
    assert raw.ch_names[0] == "EEG Fp1" and raw.ch_names[-2:] == ["EEG A2-A1", "ECG ECG"]
    assert len(raw.ch_names) == 21
    x = raw.get_data() * 1e6
    assert 5 < np.std(x[:19]) < 100  # plausible EEG in µV, not clipped
    assert len({t["gender"] for t in truth.values()}) == 2
    assert {t["count_quality"] for t in truth.values()} == {0, 1}


def test_every_window_carries_the_written_labels(demo, processed):
    root, truth = demo
    meta = rows(processed / "metadata.csv")
    per_rec = (60 * 125 - NSAMPS) // 250 + 1
    assert len(meta) == 8 * 2 * per_rec
    assert list(meta[0])[-3:] == ["doing_math", "count_quality", "caption"]
    seen = set()
    for r in meta:
        t = truth[r["subject"]]
        assert r["gender"] == t["gender"] and int(r["age"]) == t["age"] and r["health"] == "H"
        assert int(r["count_quality"]) == t["count_quality"]
        assert int(r["doing_math"]) == t["files"][r["recording"]]
        assert r["recording"] == f"{r['subject']}_{2 if r['doing_math'] == '1' else 1}"
        activity = "during mental arithmetic" if r["doing_math"] == "1" else "at rest"
        assert r["caption"] == (f"an EEG spectrogram of {'an' if t['age'] == 18 else 'a'} {t['age']} year old, "
                                f"healthy, {'female' if t['gender'] == 'F' else 'male'} subject {activity}")
        seen.add((r["subject"], r["recording"]))
    assert len(seen) == 16
    info = json.loads((processed / "preprocess.json").read_text())
    assert all(s["status"] == "done" and not s["errors"] for s in info["subjects"].values())
    assert info["parameters"]["options"] == {"states": "both"}


def test_less_alpha_during_arithmetic_where_the_subject_was_drawn_to_have_it(demo, processed):
    """The demo's arithmetic effect is EEGMAT's: alpha lower in most subjects, not in all, and
    smaller than the differences between subjects. Per subject, the image's alpha rows (9–11 Hz,
    relative to 5–7 and 14–18 Hz) drop from rest to arithmetic where the writer drew a strong
    alpha decrease, and the subjects' rest levels spread wider than the mean change."""
    from PIL import Image

    from sd_core.signals.eeg_model import read_truth
    from sd_core.spectrogram import log_frequencies

    root, _ = demo
    truth = read_truth(root)["subjects"]
    freqs = log_frequencies(R)

    def band(img, lo, hi):
        rows_ = [R - 1 - (1 + int(np.argmin(np.abs(freqs - h / FS)))) for h in np.linspace(lo, hi, 5)]
        return img[min(rows_):max(rows_) + 1].mean()

    contrast: dict[tuple[str, str], list[float]] = {}
    for r in rows(processed / "metadata.csv"):
        img = np.asarray(Image.open(processed / r["file_name"]), dtype=float)
        img = img[:, img.sum(0) > 0]
        value = band(img, 9, 11) - (band(img, 5, 7) + band(img, 14, 18)) / 2
        contrast.setdefault((r["subject"], r["doing_math"]), []).append(value)
    change = {s: np.mean(contrast[s, "1"]) - np.mean(contrast[s, "0"]) for s in truth}
    strong = [s for s in truth if truth[s]["alpha_power_ratio"] < 0.7]
    assert strong, "the seed gives no subject with a strong alpha decrease"
    assert np.mean([change[s] for s in strong]) < 0
    assert np.mean(list(change.values())) < 0
    rest_levels = [np.mean(contrast[s, "0"]) for s in truth]
    assert np.std(rest_levels) > abs(np.mean(list(change.values())))


# -- options and layouts -----------------------------------------------------------------------------

def test_states_option(demo):
    root, _ = demo
    both = PLUGIN.find_subjects(root, {"states": "both"})
    rest = PLUGIN.find_subjects(root, {"states": "rest"})
    math = PLUGIN.find_subjects(root, {"states": "arithmetic"})
    assert [r.id for r in both[0].recordings] == ["Subject00_1", "Subject00_2"]
    assert [(r.id, r.labels["doing_math"]) for r in rest[0].recordings] == [("Subject00_1", 0)]
    assert [(r.id, r.labels["doing_math"]) for r in math[0].recordings] == [("Subject00_2", 1)]
    assert PLUGIN.options["states"].default == "both"
    with pytest.raises(ConfigError, match="states = 'calm'.*both, rest, arithmetic"):
        PLUGIN.find_subjects(root, {"states": "calm"})


def test_original_raw_eeg_subfolder(demo, tmp_path):
    root, truth = demo
    for table_inside in (False, True):
        alt = tmp_path / f"alt{int(table_inside)}"
        (alt / "raw_eeg").mkdir(parents=True)
        for p in root.glob("*.edf"):
            (alt / "raw_eeg" / p.name).symlink_to(p)
        shutil.copy(root / "subject-info.csv", alt / ("raw_eeg" if table_inside else "") / "subject-info.csv")
        subjects = PLUGIN.find_subjects(alt, OPTIONS)
        assert [s.id for s in subjects] == sorted(truth)
        assert all(r.path.parent == alt / "raw_eeg" and r.path.is_file() for s in subjects for r in s.recordings)
        assert PLUGIN.raw_found(alt)


def test_default_channels_are_every_channel_but_ekg_in_file_order(demo):
    # the original project's choice: all 21 channels of an EEGMAT file, A2-A1 and ECG included
    root, _ = demo
    assert CHANNELS == ["*", "!EKG"]
    rec = PLUGIN.find_subjects(root, OPTIONS)[0].recordings[0]
    data, fs, t0 = read_span(PLUGIN, rec, ["T7", "A2-A1", "ECG"], OPTIONS)  # T7 is the file's T3
    assert data.shape == (3, 60 * 500) and fs == 500.0 and t0 == 0.0
    assert np.abs(data[2]).max() > 400  # the ECG's R waves (µV)
    default, _, _ = read_span(PLUGIN, rec, CHANNELS, OPTIONS)
    assert default.shape == (21, 60 * 500)
    np.testing.assert_array_equal(default[[6, 19, 20]], data)  # T3 is the 7th channel of the file


# -- bad inputs ------------------------------------------------------------------------------------

def test_missing_subject_info_is_a_dataset_error(demo, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "Subject00_1.edf").symlink_to(demo[0] / "Subject00_1.edf")
    with pytest.raises(DatasetError, match=r"subject-info\.csv not found in .*EEGMAT ships it") as e:
        preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert len(str(e.value).splitlines()) == 1
    res = run_sd("preprocess", "--dataset", "math", "--raw", str(root), "--output", str(tmp_path / "o2"))
    assert res.returncode == 1
    assert "subject-info.csv not found" in res.stderr and "Traceback" not in res.stderr


def test_bad_recordings_are_reported_and_the_others_finish(demo, tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    keep = ["Subject00", "Subject01", "Subject02", "Subject03"]
    for p in demo[0].glob("*.edf"):
        if p.name.split("_")[0] in keep:
            shutil.copy(p, root / p.name)
    table = (demo[0] / "subject-info.csv").read_text().splitlines()
    (root / "subject-info.csv").write_text("\n".join(table[:5]) + "\n")
    data = (root / "Subject01_2.edf").read_bytes()
    (root / "Subject01_2.edf").write_bytes(data[: len(data) // 2])  # truncated download
    (root / "Subject02_1.edf").unlink()  # missing file
    (root / "Subject03_1.edf").write_bytes(b"this is not an EDF file\n")

    res = preprocess_dataset(PLUGIN, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    status = {r.subject: r.status for r in res.results}
    assert status == {"Subject00": "done", "Subject01": "partial", "Subject02": "partial", "Subject03": "partial"}
    errors = sorted(res.errors)
    assert len(errors) == 3 and all(len(e.splitlines()) == 1 for e in errors)
    assert errors[0].startswith("Subject01/Subject01_2: Subject01_2.edf: truncated EDF (")
    assert "download it again" in errors[0]
    assert errors[1] == f"Subject02/Subject02_1: Subject02_1.edf: file not found ({root / 'Subject02_1.edf'})"
    assert errors[2].startswith("Subject03/Subject03_1: Subject03_1.edf: not an EDF file")
    meta = rows(tmp_path / "out" / "metadata.csv")
    per_rec = (60 * 125 - NSAMPS) // 250 + 1
    assert len(meta) == 5 * per_rec  # Subject00 both, the others one good recording each
    assert {r["recording"] for r in meta if r["subject"] == "Subject01"} == {"Subject01_1"}
