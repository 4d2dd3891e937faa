"""sd's default images against the original project's chain (tests/original_chain.py).

With default settings, every image `sd preprocess` writes must equal the original's image of
the same window of the same file: at least 99.9 % of pixels identical, none more than one grey
level apart.  Checked on synthetic recordings of every data set (each plugin's demo writer, in
its native format) and on the real files in ../shared/data/real/, laid out as each data set.
The shares found are printed (``pytest -s``) and kept in ``STATS``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import original_chain as oc
import pytest
from conftest import read_rows

from sd_core.config import defaults
from sd_core.preprocess import preprocess_dataset

STATS: dict[str, tuple[float, int, int]] = {}


def default_prep(**kw) -> dict:
    p = defaults()["preprocess"]
    p.update(kw)
    return p


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def run_and_compare(name, plugin, root, out, prep, reference, channels=None, options=None):
    """Preprocess with sd, then compare every image with the reference images of its recording.

    ``reference(rec) -> list of images``, one per window of the recording (window index order).
    Returns (identical share, max difference, images)."""
    options = options if options is not None else {k: o.default for k, o in plugin.options.items()}
    channels = list(channels if channels is not None else plugin.channels)
    res = preprocess_dataset(plugin, root, out, prep, channels, options)
    assert not res.errors, res.errors
    recs = {(s.id, r.id): r for s in plugin.find_subjects(root, options) for r in s.recordings}
    refs: dict = {}
    same = total = worst = 0
    meta = read_rows(out / "metadata.csv")
    assert meta, "no images were made"
    for row in meta:
        key = (row["subject"], row["recording"])
        if key not in refs:
            refs[key] = reference(recs[key])
        want = refs[key][int(row["window"])]
        got = load_png(out / row["file_name"])
        d = np.abs(got.astype(np.int16) - want.astype(np.int16))
        same += int(np.count_nonzero(d == 0))
        total += d.size
        worst = max(worst, int(d.max()))
    # sd made exactly the windows the original makes
    for key, images in refs.items():
        n = sum(1 for r in meta if (r["subject"], r["recording"]) == key)
        assert n == len(images), (key, n, len(images))
    share = same / total
    STATS[name] = (share, worst, len(meta))
    print(f"\n{name}: {len(meta)} images, {share:.6%} of pixels identical, largest difference {worst}")
    assert worst <= 1 and share >= 0.999, (name, share, worst)
    return share, worst, len(meta)


# -- references per data set ------------------------------------------------------------------------

def mne_raw(path: Path):
    import mne

    suffix = path.suffix.lower()
    if suffix == ".edf":
        return mne.io.read_raw_edf(path, preload=True, verbose="error")
    if suffix == ".set":
        return mne.io.read_raw_eeglab(path, preload=True, verbose="error")
    return mne.io.read_raw_cnt(path, data_format="int32", preload=True, verbose="error")


def reference_for(wanted, prep, m, fs=None, all_but=None):
    """reference(rec): MNE read in volts, the wanted channels (MNE names) or every channel but
    ``all_but``, the original's chain."""
    fs = fs or prep["fs"]

    def reference(rec):
        raw = mne_raw(rec.path)
        if all_but is not None:
            picks = [i for i, c in enumerate(raw.ch_names) if c != all_but]
        else:
            picks = oc.pick(raw.ch_names, wanted)
        x = raw.get_data(picks=picks)
        span = None if rec.start is None else (rec.start, rec.stop)
        return oc.recording_images(x, raw.info["sfreq"], fs, prep["nsamps"], prep["overlap"],
                                   prep["resolution"], m, span)

    return reference


# -- synthetic recordings (each plugin's demo writer) -------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from sd_chbmit.demo import CASES, write_chbmit
    from sd_math.demo import write_eegmat
    from sd_parkinsons.demo import write_ds004584
    from sd_seed.demo import write_seed_v

    base = tmp_path_factory.mktemp("synthetic")
    write_eegmat(base / "math", seed=3, n_subjects=2, rest_seconds=40.0, math_seconds=40.0)
    write_ds004584(base / "parkinsons", seed=3, n_subjects=2, seconds=40.0)
    write_seed_v(base / "seed", seed=3, n_subjects=1, clip_seconds=20.0)
    # chb06: the montage changes to one with dummy channels and a VNS channel
    write_chbmit(base / "chbmit", seed=3, cases={"chb06": CASES["chb06"]})
    return base


def plugin(name):
    from sd_core.plugins import get_registry

    return get_registry().dataset(name)


def test_eegmat_default_images_are_the_originals(synthetic, tmp_path):
    p = plugin("math")
    prep = default_prep()
    run_and_compare("EEGMAT synthetic (R 256)", p, synthetic / "math", tmp_path / "out", prep,
                    reference_for(None, prep, 4, all_but="EKG"))
    info = json.loads((tmp_path / "out" / "preprocess.json").read_text())["parameters"]
    assert info["channels"] == ["*", "!EKG"] and info["hop_multiple"] == 4
    assert (info["fs"], info["units"], info["resample"], info["hop"], info["rounding"]) == (
        125.0, "V", "decimate", "original", "truncate")
    assert info["splits"] == {"train": 0.8, "val": 0.1, "test": 0.1}


def test_parkinsons_default_images_are_the_originals(synthetic, tmp_path):
    p = plugin("parkinsons")
    prep = default_prep()
    run_and_compare("Parkinson's synthetic (R 256)", p, synthetic / "parkinsons", tmp_path / "out", prep,
                    reference_for(list(p.channels), prep, 4))
    info = json.loads((tmp_path / "out" / "preprocess.json").read_text())["parameters"]
    assert info["spectrogram"] == {"hop": 168, "frames": 12, "note": ""}


def test_seed_default_images_are_the_originals(synthetic, tmp_path):
    # the session is decimated whole and each trial cut from it; sd reads a margin around each
    p = plugin("seed")
    prep = default_prep()
    run_and_compare("SEED-V synthetic (R 256)", p, synthetic / "seed", tmp_path / "out", prep,
                    reference_for(list(p.channels), prep, 8))


def test_chbmit_images_are_the_originals_at_128_hz(synthetic, tmp_path):
    # 256 Hz -> 125 Hz is not an integer factor (the original refused it): compare at 128 Hz
    p = plugin("chbmit")
    assert list(p.channels).count("T8-P8") == 2 and len(p.channels) == 23
    prep = default_prep(fs=128.0)
    run_and_compare("CHB-MIT synthetic (fs 128, R 256)", p, synthetic / "chbmit", tmp_path / "out", prep,
                    reference_for(list(p.channels), prep, 8))


def test_chbmit_repeated_name_picks_both_signals(synthetic):
    import mne

    from sd_core.preprocess.subject import read_span

    p = plugin("chbmit")
    options = {k: o.default for k, o in p.options.items()}
    for rec in p.find_subjects(synthetic / "chbmit", options)[0].recordings:
        data, _, _ = read_span(p, rec, ["T8-P8", "FZ-CZ", "T8-P8"], options, units="V")
        edf = mne.io.read_raw_edf(rec.path, verbose="error")
        np.testing.assert_array_equal(data[0], edf.get_data(picks=["T8-P8-0"])[0])
        np.testing.assert_array_equal(data[2], edf.get_data(picks=["T8-P8-1"])[0])
        assert not np.allclose(data[0], data[2])


def test_chbmit_at_125_hz_uses_the_polyphase_resampler_and_says_so(synthetic, tmp_path):
    p = plugin("chbmit")
    prep = default_prep(nsamps=500, resolution=128)
    options = {k: o.default for k, o in p.options.items()}
    res = preprocess_dataset(p, synthetic / "chbmit", tmp_path / "out", prep, list(p.channels), options)
    assert not res.errors and sum(res.images.values()) > 0
    info = json.loads((tmp_path / "out" / "preprocess.json").read_text())
    notes = [n for s in info["subjects"].values() for n in s["notes"]]
    assert notes and all("256 Hz → 125 Hz is not an integer ratio" in n and "polyphase" in n for n in notes)


@pytest.mark.parametrize("R", [128, 512])
def test_sizes_where_the_original_rule_breaks(synthetic, tmp_path, R):
    # R 512: the rule's hop (80) gives 26 x 20 = 520 > 512 columns; R 128: 2000 mod 336 > 255.
    # sd takes the next multiple; the reference does the same where the original crashed.
    p = plugin("parkinsons")
    prep = default_prep(resolution=R)
    run_and_compare(f"Parkinson's synthetic (R {R})", p, synthetic / "parkinsons", tmp_path / "out", prep,
                    reference_for(list(p.channels), prep, 4))
    info = json.loads((tmp_path / "out" / "preprocess.json").read_text())["parameters"]
    assert "next multiple of 4" in info["spectrogram"]["note"]
    assert info["spectrogram"]["hop"] == (84 if R == 512 else 352)


def test_seed_at_128_pixels(synthetic, tmp_path):
    p = plugin("seed")
    prep = default_prep(resolution=128)
    run_and_compare("SEED-V synthetic (R 128)", p, synthetic / "seed", tmp_path / "out", prep,
                    reference_for(list(p.channels), prep, 8))


# -- the real files, laid out as each data set ---------------------------------------------------------

def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src.resolve(), dst)


EDF_CHANNELS = [f"A{i}" for i in range(1, 17)] + ["B1", "B2", "B3", "B4"]


@pytest.mark.parametrize("R", [128, 256])
def test_real_edf_as_eegmat(real_data, tmp_path, R):
    root = tmp_path / "raw"
    link(real_data / "edf/test_reduced.edf", root / "Subject00_1.edf")
    (root / "subject-info.csv").write_text("Subject,Age,Gender,Recording year,Number of subtractions,"
                                           "Count quality\nSubject00,21,F,2011,10,1\n")
    p = plugin("math")
    prep = default_prep(fs=128.0, nsamps=256, resolution=R)  # 512 Hz / 4; 6 s of signal
    run_and_compare(f"EEGMAT real EDF (fs 128, nsamps 256, R {R})", p, root, tmp_path / "out", prep,
                    reference_for(EDF_CHANNELS, prep, 4), channels=EDF_CHANNELS,
                    options={"states": "rest"})


def test_real_edf_as_chbmit(real_data, tmp_path):
    root = tmp_path / "raw"
    link(real_data / "edf/test_reduced.edf", root / "chb01" / "chb01_01.edf")
    (root / "SUBJECT-INFO").write_text("Case\tGender\tAge (years)\nchb01\tF\t11\n")
    p = plugin("chbmit")
    prep = default_prep(fs=128.0, nsamps=256)
    run_and_compare("CHB-MIT real EDF (fs 128, nsamps 256, R 256)", p, root, tmp_path / "out", prep,
                    reference_for(EDF_CHANNELS, prep, 8), channels=EDF_CHANNELS)


def test_real_eeglab_as_parkinsons(real_data, tmp_path):
    root = tmp_path / "raw"
    eeg = root / "sub-001" / "eeg"
    link(real_data / "eeglab/test_raw.set", eeg / "sub-001_task-Rest_eeg.set")
    link(real_data / "eeglab/test_raw.fdt", eeg / "test_raw.fdt")  # the name the .set refers to
    root.joinpath("participants.tsv").write_text("participant_id\tGROUP\tAGE\tGENDER\nsub-001\tPD\t66\tF\n")
    p = plugin("parkinsons")
    names = [f"EEG {i:03d}" for i in range(20)]
    prep = default_prep(fs=64.0)  # 128 Hz / 2
    run_and_compare("Parkinson's real EEGLAB (fs 64, R 256)", p, root, tmp_path / "out", prep,
                    reference_for(names, prep, 4), channels=[n[4:] for n in names])


def test_real_cnt_as_seed(real_data, tmp_path):
    root = tmp_path / "raw"
    link(real_data / "cnt/test_CNT_events_mne_JWoess_clipped.cnt", root / "EEG_raw" / "1_1_20180101.cnt")
    with open(root / "trials.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["session", "trial", "emotion", "start", "stop"])
        w.writerows([[1, 1, 4, 3, 40], [1, 2, 1, 41.3, 89.5]])  # 1000 Hz file, 90 s
    (root / "participants.csv").write_text("Subject,Sex,Age\n1,Female,21\n")
    p = plugin("seed")
    prep = default_prep()
    options = {k: o.default for k, o in p.options.items()}
    # (the file marks F8 bad, and sd leaves out recordings whose image needs a bad channel)
    run_and_compare("SEED-V real CNT (R 256)", p, root, tmp_path / "out", prep,
                    reference_for(["FCz"], prep, 8), channels=["FCZ"], options=options)


def test_improved_options_are_what_they_say(synthetic, tmp_path):
    """preset = "improved": µV, polyphase resampler, smallest hop, rounding to nearest."""
    import mne

    from sd_core.config import apply_preset
    from sd_core.signals.resample import resample
    from sd_core.spectrogram import spectrogram_image

    p = plugin("math")
    prep = apply_preset(default_prep(preset="improved", nsamps=1000, resolution=128))
    out = tmp_path / "out"
    res = preprocess_dataset(p, synthetic / "math", out, prep, list(p.channels), {"states": "rest"})
    assert not res.errors
    params = json.loads((out / "preprocess.json").read_text())["parameters"]
    assert (params["units"], params["resample"], params["hop"], params["rounding"]) == (
        "uV", "poly", "smallest", "nearest")
    row = read_rows(out / "metadata.csv")[3]
    raw = mne.io.read_raw_edf(synthetic / "math" / f"{row['recording']}.edf", verbose="error")
    x = resample(raw.get_data(picks=[c for c in raw.ch_names if c != "EKG"]) * 1e6, 500.0, 125.0, "poly")
    s = int(row["window"]) * 500
    want = spectrogram_image(x[:, s:s + 1000], 128, hop="smallest", rounding="nearest")
    assert np.array_equal(load_png(out / row["file_name"]), want)
    # and differs from the original's image of that window
    orig = oc.recording_images(raw.get_data(picks=[c for c in raw.ch_names if c != "EKG"]), 500.0, 125.0,
                               1000, 0.5, 128, 4)[int(row["window"])]
    assert np.mean(orig != want) > 0.5
