"""The decimation filter kept in sd's cache: designed and checked with scipy once, read back
exactly, never replacing a file, and used without importing ``scipy.signal``."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import scipy.signal

from sd_core.signals import decimation_filter as dfm
from sd_core.signals.resample import decimate


def fresh(monkeypatch, folder):
    monkeypatch.setenv("SD_CACHE_DIR", str(folder))
    dfm.decimation_filter.cache_clear()


def test_filter_is_designed_checked_cached_and_read_back_exactly(tmp_path, monkeypatch):
    fresh(monkeypatch, tmp_path)
    made = dfm.decimation_filter(3)
    files = list(tmp_path.glob("decimate-q3-*.json"))
    assert len(files) == 1 and made.exact and made.edge == 27
    assert np.array_equal(made.sos, scipy.signal.cheby1(8, 0.05, 0.8 / 3, output="sos"))
    assert np.array_equal(made.zi, scipy.signal.sosfilt_zi(made.sos))
    dfm.decimation_filter.cache_clear()
    again = dfm.decimation_filter(3)  # from the file
    assert again is not made and np.array_equal(again.sos, made.sos) and np.array_equal(again.zi, made.zi)
    x = np.random.default_rng(5).standard_normal(4001) * 2e-5
    assert np.array_equal(dfm.filtfilt_decimate(again, x, dfm.compiled_sosfilt()),
                          scipy.signal.decimate(x, 3, zero_phase=True))


def test_a_file_sd_cannot_read_is_left_alone(tmp_path, monkeypatch):
    fresh(monkeypatch, tmp_path)
    path = tmp_path / f"decimate-q4-{dfm._key()}.json"
    for text in ("not json", json.dumps({"format": "someone else's", "q": 4})):
        path.write_text(text)
        dfm.decimation_filter.cache_clear()
        f = dfm.decimation_filter(4)
        assert f.exact and path.read_text() == text  # designed in memory, the file untouched
    # a cache folder that cannot be made (a file in its place): designed in memory too
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fresh(monkeypatch, blocker / "sd")
    assert dfm.decimation_filter(5).exact and blocker.read_text() == "x"


def test_an_edited_coefficient_is_caught_by_its_digest(tmp_path, monkeypatch):
    """The cache file carries the sha256 of its coefficients: one edited value is not used
    (issue 31, item 7), the filter is designed again and the file left as it is."""
    fresh(monkeypatch, tmp_path)
    made = dfm.decimation_filter(3)
    path = next(tmp_path.glob("decimate-q3-*.json"))
    d = json.loads(path.read_text())
    d["sos"][0][0] = (float.fromhex(d["sos"][0][0]) * 1.001).hex()
    path.write_text(json.dumps(d))
    dfm.decimation_filter.cache_clear()
    got = dfm.decimation_filter(3)
    assert np.array_equal(got.sos, made.sos) and got.exact
    assert json.loads(path.read_text()) == d


def test_decimation_with_a_warm_cache_imports_no_scipy_signal(tmp_path):
    code = """
import sys
import numpy as np
from sd_core.signal import decimate
x = np.random.default_rng(1).standard_normal((3, 9000)) * 1e-5
np.save(sys.argv[1], decimate(x, 4))
print("scipy.signal" in sys.modules)
"""
    env = {"SD_CACHE_DIR": str(tmp_path / "cache")}
    import os

    env = {**os.environ, **env}
    out = [subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.npy")], env=env, text=True,
                          capture_output=True, check=True).stdout.split() for i in range(2)]
    assert out == [["True"], ["False"]]  # the first run designs with scipy, the second reads the cache
    x = np.random.default_rng(1).standard_normal((3, 9000)) * 1e-5
    want = scipy.signal.decimate(x, 4, axis=1, zero_phase=True)
    for i in range(2):
        assert np.array_equal(np.load(tmp_path / f"{i}.npy"), want)
    assert np.array_equal(decimate(x, 4), want)
