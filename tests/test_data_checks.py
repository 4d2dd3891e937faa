"""Raw data that used to be read silently wrong, or to end in a traceback (issue 11, findings 4 and 6):
CNT sample width, seizures outside their recording, duplicate or unreadable table rows, files that
are not UTF-8, EDF headers with impossible sample counts."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import read_rows, run_sd, small_prep

from sd_core.dataset import Recording
from sd_core.errors import ConfigError, DatasetError
from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.subject import read_span

LATIN1 = "Café".encode("latin-1")  # b"Caf\xe9": not UTF-8


# -- SEED-V: 16-bit CNT files that a 32-bit reading fools --------------------------------------------

def seed_units(seconds: float, odd: str, seed: int = 0) -> np.ndarray:
    """(66, samples) 16-bit units of plausible EEG (the demo's signal, 16/204.8 µV per unit) whose
    odd-numbered channels are ``"flat"`` (0), ``"quiet"`` (±2 units) or ``"positive"`` (flat, with
    every even channel above 0: bytes that read alike as 16 and 32 bit)."""
    from sd_seed.demo import segment

    rng = np.random.default_rng(seed)
    x = segment(rng, seconds, (4.0, 11.0, 3.0, 1.2), 10.0)
    units = np.rint(x * 1e6 / (16 / 204.8)).astype(np.int64)
    units[1::2] = rng.integers(-2, 3, units[1::2].shape) if odd == "quiet" else 0
    if odd == "positive":
        units[0::2] = np.abs(units[0::2]) + 100
    return units


def test_16bit_cnt_without_a_sample_count_is_read_as_16bit(tmp_path):
    import mne
    from sd_seed.cnt import write_cnt
    from sd_seed.demo import CHANNELS
    from sd_seed.plugin import SeedDataset

    plugin = SeedDataset()
    options = {k: o.default for k, o in plugin.options.items()}
    unit_uv = 16 / 204.8
    for odd in ("flat", "quiet"):
        units = seed_units(20.0, odd)
        for header_n in (0, -732):  # no usable count: 0, or SEED-V's 4294966564 (−732)
            path = tmp_path / f"{odd}{-header_n}.cnt"
            write_cnt(path, [units], CHANNELS, 1000, bytes_per_sample=2, header_n_samples=header_n)
            # a late trial (15–19.5 s): read as 32-bit the file held 10 s, and this trial was "truncated"
            rec = Recording("s1_t15", path, {"trial": 15}, start=15.0, stop=19.5)
            raw = plugin.read_raw(rec, options)
            assert raw.n_times == 20_000 and raw.header.bytes_per_sample == 2
            data, fs, t0 = read_span(plugin, rec, ["Fp1", "F7", "Cz", "Oz"], options)
            rows_ = [CHANNELS.index(c) for c in ("FP1", "F7", "CZ", "OZ")]
            np.testing.assert_allclose(data, units[rows_, 15_000:19_500] * unit_uv, rtol=0, atol=1e-9)
            assert float(np.abs(data[[0, 2, 3]]).max()) < 300  # µV, not 5097-µV nonsense
            ref = mne.io.read_raw_cnt(path, data_format="int16", verbose="error")
            np.testing.assert_array_equal(raw.get_data(start=0, stop=5000), ref.get_data(start=0, stop=5000))
            # how the width was decided travels with the recording (for preprocess.json)
            note = raw.sd_notes[0]
            assert note.startswith(f"{path.name}: 16-bit samples, 20000 per channel; decided from the samples "
                                   f"(the header's sample count, {header_n}, is unusable; 2640000 bytes "
                                   "before the event table): 16-bit (read as 16-bit 0.0 % of steps jump by "
                                   "half the 16-bit range or more, read as 32-bit ")
            assert note.endswith("over the data)")
    # the same signal written 32-bit is still read as 32-bit
    x32 = seed_units(6.0, "quiet", seed=1) * 8  # the 32-bit writer's unit is 8× finer
    write_cnt(tmp_path / "w32.cnt", [x32], CHANNELS, 1000, bytes_per_sample=4, header_n_samples=-732)
    raw = plugin.read_raw(Recording("s1_t01", tmp_path / "w32.cnt"), options)
    assert raw.header.bytes_per_sample == 4 and raw.n_times == 6000
    assert raw.sd_notes[0].startswith("w32.cnt: 32-bit samples, 6000 per channel; decided from the samples")
    np.testing.assert_allclose(raw.get_data(picks=[0])[0] * 1e6, x32[0] * (2 / 204.8), atol=1e-9)


def test_cnt_width_evidence_at_the_edges(tmp_path):
    """A rough 32-bit recording (steps of up to 44 000 units: 20× the demo's EEG) is still 32-bit; a
    16-bit recording that saturates from rail to rail with every other channel flat reads much like
    a 32-bit one, and is refused rather than guessed."""
    from sd_seed.cnt import read_header, write_cnt
    from sd_seed.demo import CHANNELS

    rough = seed_units(8.0, "quiet", seed=5) * 8 * 20
    write_cnt(tmp_path / "rough.cnt", [rough], CHANNELS, 1000, bytes_per_sample=4, header_n_samples=-732)
    h = read_header(tmp_path / "rough.cnt")
    assert (h.bytes_per_sample, h.n_samples) == (4, 8000)
    assert "are no multiple of 65536 units, and read as 16-bit no step does" in h.how
    rails = np.clip(seed_units(8.0, "flat", seed=5) * 1000, -32768, 32767)
    write_cnt(tmp_path / "rails.cnt", [rails], CHANNELS, 1000, bytes_per_sample=2, header_n_samples=0)
    with pytest.raises(DatasetError, match=r'^rails.cnt: cannot tell whether samples are 16 or 32 bit .*'
                                           r'set data_format = "int16" or "int32"'):
        read_header(tmp_path / "rails.cnt")
    assert read_header(tmp_path / "rails.cnt", "int16").n_samples == 8000


def seed_root(root: Path, files: dict[str, np.ndarray], trials: str) -> Path:
    from sd_seed.cnt import write_cnt
    from sd_seed.demo import CHANNELS

    (root / "EEG_raw").mkdir(parents=True)
    (root / "participants.csv").write_text("Subject,Sex,Age\n" + "".join(
        f"{name.split('_')[0]},F,2{i}\n" for i, name in enumerate(files)))
    (root / "trials.csv").write_text(trials)
    for name, units in files.items():
        write_cnt(root / "EEG_raw" / name, [units], CHANNELS, 1000, bytes_per_sample=2, header_n_samples=-732)
    return root


def test_cnt_whose_width_cannot_be_told_stops_with_the_option_to_set(tmp_path):
    from sd_seed.plugin import SeedDataset

    plugin = SeedDataset()
    options = {k: o.default for k, o in plugin.options.items()}
    good, odd = seed_units(12.0, "quiet"), seed_units(12.0, "positive", seed=2)
    root = seed_root(tmp_path / "raw", {"1_1_20180804.cnt": good, "2_1_20180811.cnt": odd},
                     "session,trial,emotion,start,stop\n1,1,happy,1,11\n")
    out = tmp_path / "out"
    res = preprocess_dataset(plugin, root, out, small_prep(), list(plugin.channels), options)
    assert {r.subject: r.status for r in res.results} == {"1": "done", "2": "failed"}
    assert res.errors == [
        '2/s1_t01: 2_1_20180811.cnt: cannot tell whether samples are 16 or 32 bit (neither reading is '
        'clearly wrong: read as 16-bit 0.0 % of steps jump by half the 16-bit range or more, read as 32-bit 0.0 %; '
        '1546 KiB looked at in 1 stretch(es) over the data); set data_format = "int16" or "int32" under '
        '[datasets.seed] in sd.toml']
    assert len(read_rows(out / "metadata.csv")) == 4  # subject 1: 10 s at 4-s windows every 2 s
    # told the width, the file is read right
    rec = Recording("s1_t01", root / "EEG_raw" / "2_1_20180811.cnt", {"trial": 1}, start=1.0, stop=11.0)
    data, _, _ = read_span(plugin, rec, ["Fp1"], {**options, "data_format": "int16"})
    np.testing.assert_allclose(data[0], odd[0, 1000:11000] * 16 / 204.8, atol=1e-9)


# -- CHB-MIT: seizures outside their recording, SUBJECT-INFO ----------------------------------------------

def chbmit_root(root: Path, recs: dict[str, tuple[float, list[tuple[float, float]]]]) -> Path:
    from sd_chbmit.annotations import write_seizure_file
    from sd_chbmit.demo import FS, MONTAGE, recording_signal, write_edf
    from sd_chbmit.summary import format_subject_info, format_summary

    rng = np.random.default_rng(3)
    (root / "chb01").mkdir(parents=True)
    (root / "SUBJECT-INFO").write_text(format_subject_info({"chb01": ("F", 11)}))
    blocks = []
    for name, (seconds, seizures) in recs.items():
        ok = [(a, min(b, seconds)) for a, b in seizures if a < seconds]  # what a signal can hold
        write_edf(root / "chb01" / f"{name}.edf", recording_signal(rng, MONTAGE, seconds, "F", ok), MONTAGE)
        if seizures:
            write_seizure_file(root / "chb01" / f"{name}.edf.seizures", seizures, FS)
        blocks.append({"name": f"{name}.edf", "start": "09:00:00", "end": "09:01:00", "seizures": seizures,
                       "channels": MONTAGE if not blocks else None})
    (root / "chb01" / "chb01-summary.txt").write_text(format_summary(blocks, FS))
    return root


def test_seizures_after_or_past_the_end_of_their_recording(tmp_path):
    from sd_chbmit.plugin import ChbmitDataset

    plugin = ChbmitDataset()
    options = {k: o.default for k, o in plugin.options.items()}
    root = chbmit_root(tmp_path / "raw", {"chb01_01": (40.0, [(50.0, 60.0)]),  # after the end
                                          "chb01_02": (40.0, [(30.0, 45.0)]),  # runs past it
                                          "chb01_03": (40.0, [(10.0, 20.0)]),
                                          "chb01_04": (40.0, [(25.0, 40.0)])})  # ends at the end: fine
    out = tmp_path / "out"
    res = preprocess_dataset(plugin, root, out, small_prep(fs=128.0, nsamps=512), list(plugin.channels), options)
    assert sorted(res.errors) == [
        "chb01/chb01_01: chb01_01.edf: the seizure at 50–60 s (chb01_01.edf.seizures) starts after the end "
        "of the recording (40 s); the file is truncated or the seizure times do not belong to it",
        "chb01/chb01_02: chb01_02.edf: the seizure at 30–45 s (chb01_02.edf.seizures) runs past the end "
        "of the recording (40 s); the file is truncated or the seizure times do not belong to it"]
    meta = read_rows(out / "metadata.csv")
    assert {r["recording"] for r in meta} == {"chb01_03", "chb01_04"}
    assert [r["seizure"] for r in meta if r["recording"] == "chb01_04"][-1] == "1"
    # the summary alone says the same
    subjects = plugin.find_subjects(root, {**options, "seizure_source": "summary"})
    rec = next(r for r in subjects[0].recordings if r.id == "chb01_01")
    with pytest.raises(DatasetError, match=r"^chb01_01.edf: the seizure at 50–60 s \(chb01-summary.txt\) "
                                           r"starts after the end of the recording \(40 s\)"):
        plugin.read_raw(rec, options)


def test_subject_info_refuses_duplicates_and_unreadable_values(tmp_path):
    from sd_chbmit.plugin import ChbmitDataset

    plugin = ChbmitDataset()
    options = {k: o.default for k, o in plugin.options.items()}
    (tmp_path / "chb01").mkdir()
    info = tmp_path / "SUBJECT-INFO"
    for body, message in (
            ("chb01\tF\t11\nchb02\tX\t7\n", "SUBJECT-INFO line 3: gender 'X' of chb02 is neither F nor M"),
            ("chb01\tF\told\n", "SUBJECT-INFO line 2: age 'old' of chb01 is not a number of years"),
            ("chb01\tF\t11\nchb03\tM\t3\nCHB01\tM\t12\n", "SUBJECT-INFO line 4: case chb01 is listed twice")):
        info.write_text("Case\tGender\tAge (years)\n" + body)
        with pytest.raises(DatasetError) as e:
            plugin.find_subjects(tmp_path, options)
        assert str(e.value) == message
    info.write_text("Case\tGender\tAge (years)\nchb01\tfemale\t1.5\nchb24\t--\t\n")
    from sd_chbmit.summary import parse_subject_info

    assert parse_subject_info(info.read_text()) == {"chb01": ("F", 1), "chb24": (None, None)}


# -- EEGMAT: subject-info.csv ---------------------------------------------------------------------------

HEADER = "Subject,Age,Gender,Recording year,Number of subtractions,Count quality\r\n"


def test_eegmat_subject_listed_twice(tmp_path):
    from sd_math.plugin import MathDataset, read_subject_info

    table = tmp_path / "subject-info.csv"
    table.write_text(HEADER + "Subject00,21,F,2011,9.7,0\r\nSubject01,18,M,2011,29.3,1\r\n"
                              "Subject00,22,M,2011,12.0,1\r\n", newline="")
    with pytest.raises(DatasetError) as e:
        read_subject_info(table)
    assert str(e.value) == "subject-info.csv line 4: subject Subject00 is listed twice"
    with pytest.raises(DatasetError, match="line 4: subject Subject00 is listed twice"):
        MathDataset().find_subjects(tmp_path, {"states": "both"})


# -- files that are not UTF-8 -------------------------------------------------------------------------------

def test_tables_and_split_files_that_are_not_utf8(tmp_path):
    from sd_math.plugin import read_subject_info
    from sd_parkinsons.bids import read_participants as read_bids_participants
    from sd_seed.tables import read_participants as read_seed_participants

    from sd_core.preprocess.splits import read_split_file

    math = tmp_path / "subject-info.csv"
    math.write_bytes(HEADER.encode() + b"Subject00,21,F,2011,9.7,0\r\nSubject01,18,M,2011," + LATIN1 + b",1\r\n")
    with pytest.raises(DatasetError) as e:
        read_subject_info(math)
    assert str(e.value) == f"{math} line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8"

    bids = tmp_path / "participants.tsv"
    bids.write_bytes(b"participant_id\tGROUP\tAGE\tGENDER\nsub-001\tPD\t70\t" + LATIN1 + b"\n")
    with pytest.raises(DatasetError, match=r"participants.tsv line 2: not UTF-8 text \(byte 0xe9\)"):
        read_bids_participants(bids)

    seed = tmp_path / "participants.csv"
    seed.write_bytes(b"Subject,Sex,Age\n1,F,21\n2,M,23 " + LATIN1 + b"\n")
    with pytest.raises(DatasetError, match=r"participants.csv line 3: not UTF-8 text \(byte 0xe9\)"):
        read_seed_participants(seed)

    splits = tmp_path / "splits.csv"
    splits.write_bytes(b"subject,split\nsub-001,train\n" + LATIN1 + b",test\n")
    with pytest.raises(ConfigError) as e:
        read_split_file(splits, ["sub-001"])
    assert str(e.value) == f"split file {splits} line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    # UTF-8 with a byte-order mark (as Excel writes it) is fine
    splits.write_bytes(b"\xef\xbb\xbfsubject,split\nsub-001,train\n")
    assert read_split_file(splits, ["sub-001"]) == {"sub-001": "train"}


def test_non_utf8_table_through_the_cli(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    (root / "subject-info.csv").write_bytes(HEADER.encode() + b"Subject00,21," + LATIN1 + b",2011,9.7,0\r\n")
    res = run_sd("preprocess", "--dataset", "math", "--raw", str(root), "--output", str(tmp_path / "out"))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"{root / 'subject-info.csv'} line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8" in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2


# -- EDF headers with impossible sample counts -------------------------------------------------------------

def test_edf_with_negative_samples_per_record(real_data, tmp_path):
    from sd_math.plugin import MathDataset

    from sd_core.signals.edf import check_edf

    path = tmp_path / "Subject00_1.edf"
    shutil.copy(real_data / "edf" / "test_reduced.edf", path)
    header = check_edf(path)
    ns = len(header.labels)
    at = 256 + ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80) + 2 * 8  # samples per record of signal 3
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(b"-512".ljust(8))
    message = (f"Subject00_1.edf: EDF header says signal 3 ({header.labels[2]!r}) has -512 samples per data "
               "record (at least 1 is needed); the file is damaged, download it again")
    with pytest.raises(DatasetError) as e:
        check_edf(path)
    assert str(e.value) == message
    with pytest.raises(DatasetError) as e:
        MathDataset().read_raw(Recording("Subject00_1", path), {})
    assert str(e.value) == message
    with open(path, "r+b") as fh:  # a negative count of records other than −1 (unknown)
        fh.seek(at)
        fh.write(struct.pack("8s", str(header.samples_per_record[2]).encode().ljust(8)))
        fh.seek(236)
        fh.write(b"-3".ljust(8))
    with pytest.raises(DatasetError, match=r"^Subject00_1.edf: EDF header says the file has -3 data records"):
        check_edf(path)
