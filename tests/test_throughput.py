"""What makes preprocessing fast must not change what it makes: the PNG encoder (pixels equal,
settings recorded, runs begun with PIL's encoder resumed with it), decimation channel by
channel in threads, and the thread share of worker processes."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
import sd_testeeg
from conftest import run_sd, small_prep
from PIL import Image

from sd_core.preprocess import preprocess_dataset
from sd_core.preprocess.png import LEGACY, SETTINGS, encode, encode_all
from sd_core.signals.resample import decimate
from sd_core.spectrogram import threads

PLUGIN = sd_testeeg.TestEEG()
CHANNELS = list(PLUGIN.channels)
OPTIONS = {"event_overlap": 0.5}


def prep(**kw):
    return small_prep(**{"fs": 125.0, "nsamps": 500, "resolution": 128, **kw})


def pixels(data: bytes) -> np.ndarray:
    im = Image.open(io.BytesIO(data))
    assert im.mode == "L" and im.format == "PNG"
    return np.asarray(im)


def pil_default(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(128, 128), (256, 256), (1, 1), (3, 200), (200, 3)])
def test_encoder_round_trips_every_pixel(shape):
    rng = np.random.default_rng(sum(shape))
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    smooth = np.cumsum(rng.integers(-3, 4, shape), axis=0).astype(np.uint8)  # wraps around: every value
    for image in (noise, smooth, np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8)):
        data = encode(image)
        assert np.array_equal(pixels(data), image)
        # a well-formed file: signature, IHDR (8-bit grey), one IDAT whose rows use the Up filter
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[24:26] == b"\x08\x00"
        n = int.from_bytes(data[33:37], "big")
        rows = np.frombuffer(zlib.decompress(data[41:41 + n]), np.uint8).reshape(shape[0], shape[1] + 1)
        assert set(rows[:, 0]) == {2}
        assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"


def test_legacy_settings_are_pils_defaults_and_threads_change_nothing():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 64, 64), dtype=np.uint8)
    assert encode(images[0], LEGACY) == pil_default(images[0])
    one = [encode(im) for im in images]
    assert encode_all(images) == one
    with threads.thread_limit(1):
        assert encode_all(images) == one
    with pytest.raises(ValueError, match="2-D uint8"):
        encode(images.astype(np.float32)[0])


@pytest.mark.parametrize("q", [2, 3, 4, 5])
@pytest.mark.parametrize("n", [60, 1001, 24000])
def test_decimate_channel_by_channel_is_scipy_bit_for_bit(q, n):
    x = np.random.default_rng(q * n).standard_normal((7, n)) * 3e-5
    want = scipy.signal.decimate(x, q, axis=1, zero_phase=True)
    for limit in (1, 2, 4):
        with threads.thread_limit(limit):
            got = decimate(x, q)
        assert got.shape == want.shape and np.array_equal(got, want)
        held = x.copy()  # the result in the input's memory (a view of it), the same numbers
        got = decimate(held, q, overwrite=True)
        assert np.shares_memory(got, held) and np.array_equal(got, want)
    assert np.array_equal(decimate(x[0], q), want[0])


def test_thread_limit_is_restored():
    before = threads.n_threads()
    with threads.thread_limit(1):
        assert threads.n_threads() == 1
        assert all(n == 1 for n in threads.blas_threads())
        with threads.thread_limit(3):
            assert threads.n_threads() == min(3, 8)
        assert threads.n_threads() == 1
    assert threads.n_threads() == before


def _share():
    from sd_core.spectrogram import threads as t

    return t.n_threads(), t.blas_threads()


def test_workers_take_their_share_of_the_cores():
    from sd_core.preprocess.runner import _pool

    for workers, asked, want in ((2, 0, max(1, threads.cores() // 2)), (1, 0, min(threads.cores(), 8)),
                                 (2, 1, 1)):
        with _pool(workers, asked) as pool:
            n, blas = pool.submit(_share).result()
        assert n == want
        assert all(b == min(want, b) for b in blas) and (not blas or max(blas) <= max(want, 1))


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "testeeg"
    sd_testeeg.write_testeeg(root, seed=4, n_subjects=3, seconds=20.0, runs=1)
    return root


def test_settings_recorded_and_pixels_as_before(raw, tmp_path):
    out = tmp_path / "testeeg"
    preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS)
    meta = json.loads((out / "preprocess.json").read_text())
    assert meta["parameters"]["png"] == SETTINGS
    rows = list((out / "train").rglob("*.png")) + list((out / "test").rglob("*.png"))
    assert rows
    for path in rows[:5]:
        data = path.read_bytes()
        assert data == encode(pixels(data))  # sd's encoder wrote it


def test_a_run_begun_with_pils_encoder_resumes_with_it(raw, tmp_path):
    """A run started by an sd that used PIL (no "png" in its parameters) is resumed, not refused,
    and its remaining images are encoded as its first ones were."""
    out = tmp_path / "testeeg"
    preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS)
    # make it look like an older run: PIL-encoded images, no "png" key, one subject not done
    params_file = out / ".sd" / "params.json"
    state = json.loads(params_file.read_text())
    del state["parameters"]["png"]
    params_file.write_text(json.dumps(state))
    subject_states = sorted((out / ".sd" / "subjects").glob("*.json"))
    first = json.loads(subject_states[0].read_text())
    for rel in first["files"]:
        (out / rel).write_bytes(pil_default(pixels((out / rel).read_bytes())))
    first["files"] = {rel: None for rel in first["files"]}
    subject_states[0].write_text(json.dumps(first))
    last = json.loads(subject_states[-1].read_text())
    subject_states[-1].unlink()  # a subject the older run had not reached
    for rel in last["files"]:
        (out / rel).unlink()
    res = preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS)
    assert res.skipped == 2 and len(res.results) == 1 and not res.errors
    for rel in last["files"]:
        data = (out / rel).read_bytes()
        assert data == pil_default(pixels(data))
    meta = json.loads((out / "preprocess.json").read_text())
    assert meta["parameters"]["png"] == LEGACY
    # --overwrite starts again with sd's encoder
    preprocess_dataset(PLUGIN, raw, out, prep(), CHANNELS, OPTIONS, overwrite=True)
    assert json.loads((out / "preprocess.json").read_text())["parameters"]["png"] == SETTINGS


def test_threads_option_is_validated(tmp_path):
    res = run_sd("preprocess", "--dataset", "math", "--threads", "-1", cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "threads" in res.stderr


class _Watched(sd_testeeg.TestEEG):
    """Records the thread each plugin call runs in."""

    calls: list = []

    def read_raw(self, recording, options):
        import threading

        self.calls.append(("read_raw", threading.current_thread().name))
        return super().read_raw(recording, options)

    def label_windows(self, recording, spans, options):
        import threading

        self.calls.append(("label_windows", threading.current_thread().name))
        return super().label_windows(recording, spans, options)


def test_plugin_code_runs_in_the_calling_thread_while_the_next_recording_is_read(tmp_path):
    """Reading ahead moves only MNE's reading and the resampling to a background thread."""
    import threading

    root = tmp_path / "raw"
    sd_testeeg.write_testeeg(root, seed=5, n_subjects=1, seconds=20.0, runs=3)
    plugin = _Watched()
    _Watched.calls = []
    res = preprocess_dataset(plugin, root, tmp_path / "out", prep(), CHANNELS, OPTIONS)
    assert not res.errors and res.results[0].images > 0
    assert [c[0] for c in _Watched.calls].count("read_raw") == 3
    assert {c[1] for c in _Watched.calls} == {threading.main_thread().name}
    # the same images as reading one recording at a time
    from sd_core.preprocess import reading

    before = reading.PREFETCH_BYTES
    reading.PREFETCH_BYTES = 0
    try:
        preprocess_dataset(plugin, root, tmp_path / "one-at-a-time", prep(), CHANNELS, OPTIONS)
    finally:
        reading.PREFETCH_BYTES = before
    for png in (tmp_path / "out").rglob("*.png"):
        assert png.read_bytes() == (tmp_path / "one-at-a-time" / png.relative_to(tmp_path / "out")).read_bytes()


def test_refine_screen_finds_the_same_bins_as_the_float64_test():
    """The engine's float32 screen before its exact test of suspect bins keeps every bin the
    float64 test on all bins would flag, in the same order (zeros, flat strips, no error)."""
    from sd_core.spectrogram.refine import _suspects

    rng = np.random.default_rng(0)
    flagged = 0
    for trial in range(200):
        K, n = 255, int(rng.integers(1, 300))
        pw = (10 ** rng.uniform(-30, 5, (K, n))).astype(np.float32)
        pw[rng.random((K, n)) < (0.3 if trial % 5 == 0 else 0.0)] = 0
        errcol = 10 ** rng.uniform(-9, -3, K)
        errcol[rng.random(K) < 0.05] = 0
        xnorm = 10 ** rng.uniform(-6, 3, n)
        xnorm[rng.random(n) < 0.05] = 0
        rel = 10 ** rng.uniform(-7, -2, n)
        rel[rng.random(n) < 0.05] = 0
        ep, floor = 10 ** rng.uniform(-20, -8, n), 10 ** rng.uniform(-12, -3, n)
        amp = np.sqrt(pw.astype(np.float64))
        err = errcol[:, None] * xnorm
        want = np.nonzero((err > rel * (amp + ep)) & (amp + err + ep > floor))
        got = _suspects(pw, errcol, xnorm, rel, ep, floor)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        flagged += want[0].size
    assert flagged > 1000  # the test exercises bins that are flagged, not only empty sets


def test_read_ahead_depth_and_memory_rule(tmp_path, monkeypatch):
    """At most DEPTH recordings are read ahead, across subjects; none after a recording whose
    samples (the buffer they sit in) take PREFETCH_BYTES or more; an unexpected order drops what
    was read ahead and reads the asked recording."""
    from sd_core.preprocess import reading

    root = tmp_path / "raw"
    sd_testeeg.write_testeeg(root, seed=6, n_subjects=2, seconds=20.0, runs=3)
    subjects = PLUGIN.find_subjects(root, OPTIONS)
    params = {"fs": 128.0, "units": "V", "resample": "decimate", "channels": CHANNELS}  # 256 Hz / 2
    items = [(PLUGIN, r, params, OPTIONS) for s in subjects for r in s.recordings]
    assert len(items) == 6
    with reading.ReadAhead() as ahead:
        data, t0, _ = ahead.read(*items[0], upcoming=items[1:])
        assert [a[0] for a in ahead._ahead] == [items[1][1], items[2][1]]
        assert reading.held_bytes(data) == data.nbytes  # decimated, then shrunk to its size
        ahead.read(*items[1], upcoming=items[2:])
        assert [a[0] for a in ahead._ahead] == [items[2][1], items[3][1]]  # into the next subject
        got = ahead.read(*items[4], upcoming=items[5:])  # out of order: read directly
        want = reading.read_resampled(*items[4])
        assert np.array_equal(got[0], want[0]) and got[1] == want[1]
        # files that suggest a long recording are not read ahead (20 s x 4 channels at 256 Hz:
        # about 160 kB decoded)
        assert 4 * items[1][1].path.stat().st_size <= reading.estimated_bytes(items[1][1]) < 10**6
        monkeypatch.setattr(reading, "PREFETCH_BYTES", reading.estimated_bytes(items[1][1]))
        ahead._ahead = []
        first = ahead.read(*items[0], upcoming=items[1:])
        assert reading.held_bytes(first[0]) < reading.PREFETCH_BYTES and ahead._ahead == []
        monkeypatch.setattr(reading, "PREFETCH_BYTES", 1)
        ahead.read(*items[0], upcoming=items[1:])
        assert ahead._ahead == []


def test_compact_span_keeps_the_columns_in_a_buffer_of_their_size():
    from sd_core.preprocess.reading import compact_span, held_bytes

    rng = np.random.default_rng(3)
    for rows, cols, start, width in [(5, 1000, 0, 250), (5, 1000, 700, 250), (3, 64, 10, 54), (1, 9, 2, 3),
                                     (4, 100, 0, 100)]:
        seed = int(rng.integers(1 << 30))
        want = np.random.default_rng(seed).standard_normal((rows, cols))[:, start : start + width]
        got = compact_span(np.random.default_rng(seed).standard_normal((rows, cols)), start, width)
        assert np.array_equal(got, want) and held_bytes(got) == (want.nbytes if width < cols else 8 * rows * cols)
        # another reference to the buffer: it cannot be shrunk; the columns are right all the same
        buf = rng.standard_normal((rows, cols))
        want = buf[:, start : start + width].copy()
        other = buf[:1]
        got = compact_span(buf, start, width)
        assert np.array_equal(got, want) and other.base is buf
        assert np.shares_memory(got, other) and held_bytes(got) == 8 * rows * cols  # moved in place, not shrunk


def test_cores_respect_a_container_cpu_quota(tmp_path, monkeypatch):
    """Threads × workers never exceed the cores a container may use: cgroup v2 ``cpu.max`` and
    v1 ``cpu.cfs_quota_us`` cap what the affinity mask says."""
    import os

    affinity = len(os.sched_getaffinity(0))

    def cores_with(files: dict) -> tuple[int, int | None]:
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        root.mkdir(exist_ok=True)
        monkeypatch.setattr(threads, "CGROUP_ROOT", str(root))
        threads.quota_cores.cache_clear()
        return threads.cores(), threads.quota_cores()

    try:
        assert cores_with({"cpu.max": "150000 100000\n"}) == (min(affinity, 2), 2)
        assert cores_with({"cpu.max": "50000 100000\n"}) == (1, 1)
        assert cores_with({"cpu.max": "max 100000\n"}) == (affinity, None)
        assert cores_with({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}) == (1, 1)
        assert cores_with({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}) == (affinity, None)
        assert cores_with({"cpu.max": "garbage"}) == (affinity, None)
        assert cores_with({}) == (affinity, None)
    finally:
        monkeypatch.undo()
        threads.quota_cores.cache_clear()


def test_a_buffer_that_cannot_be_decimated_in_place_is_not_used_as_if_it_were():
    """An array MNE might hand back in Fortran order is decimated into a new array, and the span
    cut from that, not from the untouched samples."""
    from sd_core.preprocess.reading import compact_span, decimated

    x = np.random.default_rng(8).standard_normal((4, 3000)) * 1e-5
    want = scipy.signal.decimate(x, 2, axis=1, zero_phase=True)[:, 100:1100]
    for buf in (x.copy(), np.asfortranarray(x)):
        got = compact_span(decimated(buf, 2), 100, 1000)
        assert np.array_equal(got, want)
