"""Channel selection by name: aliases, repeated names, "*" and "!NAME"."""

import pytest

from sd_core.errors import DatasetError
from sd_core.signals.channels import clean_channel_name, match_channels

EEGMAT = [clean_channel_name(n) for n in (
    "EEG Fp1", "EEG Fp2", "EEG F3", "EEG F4", "EEG F7", "EEG F8", "EEG T3", "EEG T4", "EEG C3", "EEG C4",
    "EEG T5", "EEG T6", "EEG P3", "EEG P4", "EEG O1", "EEG O2", "EEG Fz", "EEG Cz", "EEG Pz", "EEG A2-A1",
    "ECG ECG")]


def test_every_channel_but_ekg_in_file_order():
    assert match_channels(["*", "!EKG"], EEGMAT) == list(range(21))
    assert match_channels(["*", "!EKG"], [*EEGMAT[:5], "EKG", *EEGMAT[5:]]) == [0, 1, 2, 3, 4, *range(6, 22)]
    # names listed first come first; "*" adds the rest in file order
    assert match_channels(["T7", "*", "!ECG"], EEGMAT) == [6, *[i for i in range(20) if i != 6]]


def test_a_name_listed_twice_picks_two_channels_of_that_name():
    avail = ["FP1-F7", "T8-P8", "FZ-CZ", "T8-P8"]
    assert match_channels(["T8-P8", "FZ-CZ", "T8-P8"], avail) == [1, 2, 3]
    with pytest.raises(DatasetError, match=r"lacks channel\(s\) FZ-CZ \(2nd of that name\)"):
        match_channels(["FZ-CZ", "FZ-CZ"], avail, where="x.edf")


def test_aliases_and_missing_names():
    assert match_channels(["t7", "P8"], ["T3", "T6"]) == [0, 1]
    with pytest.raises(DatasetError, match=r"rec.edf lacks channel\(s\) Oz, TP10 \(has 2: T3, T6\)"):
        match_channels(["Oz", "T7", "TP10"], ["T3", "T6"], where="rec.edf")
