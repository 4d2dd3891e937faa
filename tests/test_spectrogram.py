"""The spectrogram engine against a direct implementation of the definition.

The reference below follows the definition word for word, per channel and per frame, in
float64 / complex128 (only the sum over the samples of a frame is vectorised).  The engine
must agree with it to within one grey level everywhere.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from sd_core.errors import SdError
from sd_core.spectrogram import (
    BINS,
    SpectrogramSizeError,
    plan_spectrogram,
    spectrogram_image,
    spectrogram_images,
)

EDF = Path(__file__).resolve().parents[1].parent / "shared/data/real/edf/test_reduced.edf"


# --------------------------------------------------------------------------- reference


def ref_hop(C: int, nsamps: int, R: int, rule: str = "original", m: int = 4) -> int:
    """"smallest": the smallest hop with C * F <= R.  "original": the smallest multiple of m
    with nsamps / hop <= floor(R / C); then, where C * F > R or nsamps % hop > 2R - 1, the
    next multiple with neither (or, if none has both, the next with C * F <= R)."""
    if rule == "smallest":
        hop = 1
        while C * (1 + nsamps // hop) > R:
            hop += 1
        return hop
    hop = m
    while nsamps / hop > R // C:
        hop += m
    candidates = range(hop, max(hop, nsamps + m) + 1, m)
    both = [h for h in candidates if C * (1 + nsamps // h) <= R and nsamps % h <= 2 * R - 1]
    return both[0] if both else next(h for h in candidates if C * (1 + nsamps // h) <= R)


def _to_u8(db: np.ndarray, rounding: str = "truncate") -> np.ndarray:
    lo, hi = db.min(), db.max()
    if hi - lo <= 1e-9:  # constant strip (a spread this small is rounding noise)
        return np.zeros(db.shape, dtype=np.uint8)
    v = (db - lo) / (hi - lo) * 255.0
    return (np.rint(v) if rounding == "nearest" else v).astype(np.uint8)


def reference_db(x: np.ndarray, R: int, bins: str = "log", hop: str = "original", m: int = 4) -> list[np.ndarray]:
    """The definition, directly: x (C, nsamps) -> per channel the dB strip (R rows, F frames),
    row 0 = DC / 0 cycles per sample (not yet flipped)."""
    x = np.asarray(x, dtype=np.float64)
    C, ns = x.shape
    hop = ref_hop(C, ns, R, hop, m)
    n = 2 * R - 1
    F = 1 + ns // hop
    m = np.arange(n)
    if bins == "log":
        w = np.hanning(n)
        f = 10.0 ** np.linspace(np.log10(0.001), np.log10(0.5), R - 1)
        dft = np.exp(-2j * np.pi * np.outer(f, m))  # (R-1, n): row j is exp(-2 pi i f_j m)
    else:
        win = scipy.signal.get_window("hann", R, fftbins=True)  # periodic Hann
        lpad = (n - R) // 2  # librosa.util.pad_center
        fft_window = np.zeros(n)
        fft_window[lpad : lpad + R] = win
        k = np.arange(n // 2 + 1)
        dft = np.exp(-2j * np.pi * np.outer(k, m) / n)  # one-sided n-point DFT, R rows
    strips = []
    for ch in range(C):
        xc = x[ch]
        mags = np.empty((R, F))
        if bins == "log":
            d = xc - xc.mean()
            extra = n - ns % hop
            padded = np.concatenate([d, np.zeros(extra)]) if extra >= 0 else d[: ns + extra]
            starts = list(range(0, len(padded) - n + 1, hop))
            assert len(starts) == F
            for t, s in enumerate(starts):
                frame = padded[s : s + n]
                mags[1:, t] = np.abs(dft @ (w * frame)) * 2.0 / math.sqrt(n)
                mags[0, t] = abs(xc.sum()) / math.sqrt(ns)
        else:
            padded = np.pad(xc, (n // 2, n // 2), mode="constant")  # center=True, zeros
            starts = list(range(0, len(padded) - n + 1, hop))  # librosa's frames
            # librosa has 1 + (nsamps - 1) // hop frames; the definition has F (one more
            # when hop divides nsamps): that last frame sees zeros past the padding.
            assert len(starts) in (F, F - 1)
            padded = np.concatenate([padded, np.zeros(n)])
            for t in range(F):
                frame = padded[t * hop : t * hop + n]
                mags[:, t] = np.abs(dft @ (fft_window * frame))
        strips.append(np.maximum(20.0 * np.log10(mags + 1e-9), -100.0))
    return strips


def reference_image(x: np.ndarray, R: int, bins: str = "log", hop: str = "original", m: int = 4,
                    rounding: str = "truncate") -> np.ndarray:
    """The definition, directly: x (C, nsamps) float64 -> (R, R) uint8."""
    strips = reference_db(x, R, bins, hop, m)
    C, F = len(strips), strips[0].shape[1]
    image = np.zeros((R, R), dtype=np.uint8)
    x0 = (R - C * F) // 2
    for ch, db in enumerate(strips):
        image[:, x0 + ch * F : x0 + (ch + 1) * F] = _to_u8(db, rounding)[::-1]  # DC at the bottom
    return image


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.fixture(scope="module")
def eeg() -> np.ndarray:
    import mne

    if not EDF.exists():
        pytest.fail(f"real test recording not found at {EDF} (../shared/data/real)")
    raw = mne.io.read_raw_edf(EDF, preload=False, verbose="ERROR")
    data = raw.get_data()  # (139, 3072) float64
    assert data.shape[0] >= 139 and data.shape[1] >= 3072
    return data


# --------------------------------------------------------------------------- planning


def test_plan_512_20_channels_2000_samples():
    plan = plan_spectrogram(20, 2000, 512, hop="smallest")
    assert (plan.hop, plan.n_frames, plan.width, plan.window_length) == (81, 25, 500, 1023)
    assert plan.x_offset == 6
    assert plan.bins == "log" and plan.note == ""


def test_plan_original_hop_rule_at_the_defaults():
    # 2000 / hop <= floor(256 / 20) = 12: hop >= 166.7, the next multiple of 4 (and of 8) is 168
    for m in (4, 8):
        plan = plan_spectrogram(20, 2000, 256, hop_multiple=m)
        assert (plan.hop, plan.n_frames, plan.width, plan.note) == (168, 12, 240, "")
    assert plan_spectrogram(20, 2000, 256, hop="smallest").hop == 167


def test_plan_where_the_original_rule_breaks_takes_the_next_multiple():
    # R = 512: the rule gives 80, 26 frames x 20 channels = 520 > 512 (the original asserts)
    plan = plan_spectrogram(20, 2000, 512, hop_multiple=4)
    assert (plan.hop, plan.n_frames) == (84, 24)
    assert "80" in plan.note and "520" in plan.note and "84" in plan.note
    # R = 128: the rule gives 336, 2000 mod 336 = 320 > 255 (negative padding)
    plan = plan_spectrogram(20, 2000, 128, hop_multiple=8)
    assert (plan.hop, plan.n_frames) == (352, 6) and 2000 % 352 <= 255
    assert "336" in plan.note and "negative padding" in plan.note


@pytest.mark.parametrize("m", [1, 4, 8])
@pytest.mark.parametrize("C", [1, 3, 7, 20, 64])
@pytest.mark.parametrize("ns", [1, 5, 100, 777, 2000, 3072])
@pytest.mark.parametrize("R", [16, 64, 128, 256, 512])
def test_plan_original_rule_matches_reference(C, ns, R, m):
    if C > R:
        return
    plan = plan_spectrogram(C, ns, R, hop_multiple=m)
    assert plan.hop == ref_hop(C, ns, R, "original", m)
    assert plan.hop % m == 0 and plan.width == C * plan.n_frames <= R


@pytest.mark.parametrize("C", [1, 2, 3, 7, 20, 64])
@pytest.mark.parametrize("ns", [1, 2, 5, 63, 100, 777, 2000, 3072])
@pytest.mark.parametrize("R", [64, 256, 512])
def test_plan_hop_is_the_smallest_that_fits(C, ns, R):
    if C > R:
        return
    plan = plan_spectrogram(C, ns, R, hop="smallest")
    assert plan.hop == ref_hop(C, ns, R, "smallest")
    assert plan.n_frames == 1 + ns // plan.hop
    assert plan.width == C * plan.n_frames <= R
    assert plan.x_offset == (R - plan.width) // 2


def test_more_channels_than_pixels_is_refused():
    with pytest.raises(SpectrogramSizeError) as info:
        plan_spectrogram(40, 2000, 32)
    msg = str(info.value)
    for number in ("40", "32", "2000"):
        assert number in msg
    assert "resolution" in msg
    assert isinstance(info.value, SdError)


def test_empty_window_is_refused():
    with pytest.raises(SpectrogramSizeError, match="nsamps=0"):
        plan_spectrogram(4, 0, 64)


def test_unknown_bins_and_wrong_shape():
    with pytest.raises(ValueError):
        plan_spectrogram(4, 100, 64, bins="mel")
    plan = plan_spectrogram(4, 100, 64)
    with pytest.raises(ValueError):
        spectrogram_images(np.zeros((2, 3, 100)), plan)


# --------------------------------------------------------------------------- equivalence

RANDOM_CASES = [
    # (C, nsamps, R)
    (1, 300, 32),  # one channel, nsamps % hop != 0
    (3, 1000, 64),
    (5, 777, 64),
    (4, 56, 32),  # hop divides nsamps (hop 8)
    (4, 240, 64),  # hop divides nsamps (hop 16)
    (20, 2000, 64),  # hop (667) longer than the frame (127)
    (20, 2000, 128),
    (2, 5, 16),  # very short window
    (16, 16, 16),  # one column per channel
    (1, 7, 2),  # smallest image: DC row and one log bin
    (2, 10, 3),
]


STYLES = [  # (hop rule, hop multiple, rounding): the original's (m = 4, 8) and sd's options
    ("original", 4, "truncate"),
    ("original", 8, "truncate"),
    ("smallest", 1, "nearest"),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("bins", BINS)
@pytest.mark.parametrize("C,ns,R", RANDOM_CASES)
def test_random_signals_match_reference(C, ns, R, bins, style):
    hop, m, rounding = style
    rng = np.random.default_rng(C * 1000 + ns + R)
    x = rng.standard_normal((C, ns)) * rng.uniform(0.1, 10.0, size=(C, 1)) + rng.normal(size=(C, 1))
    got = spectrogram_image(x, R, bins, hop=hop, hop_multiple=m, rounding=rounding)
    assert got.shape == (R, R) and got.dtype == np.uint8
    assert max_diff(got, reference_image(x, R, bins, hop, m, rounding)) <= 1


def identical_share(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


@pytest.mark.parametrize("bins", BINS)
@pytest.mark.parametrize("R", [64, 128, 256, 512])
def test_real_eeg_in_volts_is_identical_on_999_of_1000_pixels(eeg, R, bins):
    # the original's units (volts: the -100 dB floor decides part of the picture), truncation
    for m in (4, 8):
        for ch0, s0 in ((0, 0), (60, 1000)):
            x = eeg[ch0 : ch0 + 20, s0 : s0 + 2000]
            got = spectrogram_image(x, R, bins, hop_multiple=m)
            ref = reference_image(x, R, bins, "original", m)
            assert max_diff(got, ref) <= 1
            assert identical_share(got, ref) >= 0.999, (m, ch0)


@pytest.mark.parametrize("bins", BINS)
def test_random_512_20_channels_match_reference(bins):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((20, 2000))
    got = spectrogram_image(x, 512, bins)
    assert max_diff(got, reference_image(x, 512, bins)) <= 1


@pytest.mark.parametrize("bins", BINS)
def test_batch_equals_single_windows_and_float32(bins):
    rng = np.random.default_rng(3)
    # 40 windows of 20 x 2000 at R=512: more than one internal chunk
    xs = rng.standard_normal((40, 20, 2000)).astype(np.float32)
    plan = plan_spectrogram(20, 2000, 512, bins)
    batch = spectrogram_images(xs, plan)
    assert batch.shape == (40, 512, 512)
    for i in (0, 17, 39):
        single = spectrogram_image(xs[i].astype(np.float64), 512, bins)
        assert max_diff(batch[i], single) <= 1
    assert max_diff(batch[5], reference_image(xs[5], 512, bins)) <= 1


@pytest.mark.parametrize("bins", BINS)
@pytest.mark.parametrize("R", [64, 256, 512])
def test_real_eeg_matches_reference(eeg, R, bins):
    for ch0, s0 in ((0, 0), (60, 1000), (119, 1072)):
        x = eeg[ch0 : ch0 + 20, s0 : s0 + 2000]
        assert x.shape == (20, 2000)
        got = spectrogram_image(x, R, bins)
        assert max_diff(got, reference_image(x, R, bins)) <= 1


@pytest.mark.parametrize("factor", [1e-6, 1e6])
def test_real_eeg_rescaled_matches_reference(eeg, factor):
    # other units: the -100 dB floor and the 1e-9 then matter differently
    x = eeg[20:40, 500:2500] * factor
    for bins in BINS:
        assert max_diff(spectrogram_image(x, 256, bins), reference_image(x, 256, bins)) <= 1


def _hard_signals(ns: int, rng) -> dict[str, np.ndarray]:
    """Signals with huge spectral dynamic range: float32 alone is not accurate enough."""
    t = np.arange(ns)
    return {
        "sines": np.stack([np.sin(2 * np.pi * (0.001 + 0.023 * i) * t + i) for i in range(20)]),
        "double_walk": np.cumsum(np.cumsum(rng.standard_normal((20, ns)), -1), -1),
        "step": (t > ns / 3)[None].repeat(20, 0) + 1e-3 * rng.standard_normal((20, ns)),
        "tiny": 1e-12 * rng.standard_normal((20, ns)),
        "huge": 1e12 * np.cumsum(rng.standard_normal((20, ns)), -1),
    }


@pytest.mark.parametrize("R", [128, 512])
def test_hard_signals_match_reference(R):
    rng = np.random.default_rng(11)
    for name, x in _hard_signals(2000, rng).items():
        for bins in BINS:
            got = spectrogram_image(x, R, bins)
            assert max_diff(got, reference_image(x, R, bins)) <= 1, (name, bins)


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e-20, 1e-6, 1e20, 1e200, 1e300])
def test_extreme_scales_match_reference(scale):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 1000)) * scale
    x[1] *= 1e-3
    x[2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bins in BINS:
            assert max_diff(spectrogram_image(x, 64, bins), reference_image(x, 64, bins)) <= 1


def test_nearly_flat_strip_matches_reference():
    # one impulse at the centre of every frame (hop > n), alternating sign, and the window
    # sum set so that the DC row equals the bins: the strip spans well under 2 dB, where
    # single precision cannot resolve the grey levels
    ns, R = 20000, 16
    plan = plan_spectrogram(1, ns, R)
    x = np.zeros((1, ns))
    x[0, np.arange(plan.n_frames) * plan.hop + R - 1] = np.resize([1.0, -1.0], plan.n_frames)
    x[0, 1000] = 2.0 / math.sqrt(2 * R - 1) * math.sqrt(ns)  # between frames
    (db,) = reference_db(x, R)
    assert 0 < db.max() - db.min() < 2.0
    assert max_diff(spectrogram_image(x, R), reference_image(x, R)) <= 1


@pytest.mark.parametrize("bins", BINS)
def test_lone_impulse_strip_is_constant(bins):
    # a window holding one impulse under a single frame has a flat spectrum: in theory a
    # constant strip (0), in floating point a spread of ~1e-15 dB that min-max scaling would
    # blow up to random 0/255 pixels; spreads up to 1e-9 dB count as constant
    x = np.zeros((23, 500))
    x[5, 4] = 0.7
    x[5, 451] = -1.3
    img = spectrogram_image(x, 31, bins)
    assert max_diff(img, reference_image(x, 31, bins)) <= 1
    if bins == "linear":  # (log bins: demeaning and the DC row make the strip non-constant)
        assert not img.any()


def test_blas_threads_restored():
    from sd_core.spectrogram.threads import blas_threads

    before = blas_threads()
    assert before, "threadpoolctl finds numpy's BLAS"
    rng = np.random.default_rng(1)
    spectrogram_images(rng.standard_normal((12, 20, 2000)), plan_spectrogram(20, 2000, 512))
    assert blas_threads() == before


# --------------------------------------------------------------------------- properties


def test_512_layout_outside_strips_is_black():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 2000)) + 5.0
    img = spectrogram_image(x, 512)
    assert img.shape == (512, 512)
    assert not img[:, :6].any() and not img[:, 506:].any()
    # every channel strip is used (max 255 somewhere, min 0 somewhere)
    for ch in range(20):
        strip = img[:, 6 + 25 * ch : 6 + 25 * (ch + 1)]
        assert strip.max() == 255 and strip.min() == 0


def test_low_frequencies_at_the_bottom_log():
    R, ns = 64, 4000
    f = 10.0 ** np.linspace(np.log10(0.001), np.log10(0.5), R - 1)
    j = int(np.argmin(np.abs(f - 0.25)))  # bin j is frequency row j + 1
    t = np.arange(ns)
    x = np.stack([np.sin(2 * np.pi * f[j] * t), 3.0 + 0.01 * np.sin(2 * np.pi * f[j] * t)])
    plan = plan_spectrogram(2, ns, R)
    img = spectrogram_image(x, R)
    F, x0 = plan.n_frames, plan.x_offset
    sine = img[:, x0 : x0 + F].astype(int)
    # the sinusoid's row is image row R-1-(j+1); DC is the bottom row
    assert np.all(sine[:-1].argmax(axis=0) == R - 2 - j)
    # second channel: a large offset makes DC (bottom row) the brightest row
    offset = img[:, x0 + F : x0 + 2 * F]
    assert np.all(offset[R - 1] == 255)


def test_low_frequencies_at_the_bottom_linear():
    R, ns = 64, 4000
    n = 2 * R - 1
    k = 20
    x = np.sin(2 * np.pi * k / n * np.arange(ns))[None]
    plan = plan_spectrogram(1, ns, R, "linear")
    img = spectrogram_image(x, R, "linear")
    strip = img[:, plan.x_offset : plan.x_offset + plan.n_frames].astype(int)
    # interior frames (the first and last are half zero padding): row k is image row R-1-k
    assert np.all(strip[:, 1:-1].argmax(axis=0) == R - 1 - k)


@pytest.mark.parametrize("bins", BINS)
def test_constant_channels_without_warnings(bins):
    rng = np.random.default_rng(2)
    x = np.zeros((3, 1000))
    x[1] = 4.0
    x[2] = rng.standard_normal(1000)
    plan = plan_spectrogram(3, 1000, 64, bins)
    F, x0 = plan.n_frames, plan.x_offset
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = spectrogram_image(x, 64, bins)
    assert not img[:, x0 : x0 + F].any()  # an all-zero channel is a black strip
    if bins == "log":
        # a non-zero constant is zero after demeaning: only its DC row (bottom) is lit
        const = img[:, x0 + F : x0 + 2 * F]
        assert np.all(const[-1] == 255) and not const[:-1].any()
    assert max_diff(img, reference_image(x, 64, bins)) <= 1


def test_non_finite_input_is_refused():
    x = np.zeros((2, 100))
    x[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spectrogram_image(x, 32)
