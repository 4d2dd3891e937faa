"""The original project's decimation filter, without importing ``scipy.signal`` on every run.

``scipy.signal.decimate(x, q, zero_phase=True)`` designs ``cheby1(8, 0.05, 0.8 / q)`` as
second-order sections and runs scipy's compiled ``sosfilt`` forwards and backwards over an odd
extension of the signal. Importing ``scipy.signal`` costs about a second (it pulls in
``scipy.stats``), paid by every run and every worker process, for a filter that is the same
every time. So:

* :func:`compiled_sosfilt` loads scipy's compiled ``_sosfilt`` routine, the one ``sosfilt``
  calls, straight from its extension file (a few milliseconds; no ``scipy.signal`` package);
* :func:`decimation_filter` designs the filter with scipy once per machine and scipy/numpy
  version, checks that the steps of :func:`sd_core.signal.decimate` give
  ``scipy.signal.decimate``'s numbers bit for bit on probe signals, and keeps the coefficients
  (exact, as hexadecimal floats) in sd's cache folder (``$SD_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/sd``, else ``~/.cache/sd``). Later runs read them from there.

The cache key holds what could change the design's last bits: the scipy and numpy versions,
the processor architecture and the CPU features numpy dispatches on. A cache file is written
once and never replaced; one that cannot be read is left alone and the filter is designed in
memory instead. Where anything here fails (a scipy without the routine, a cache folder that
cannot be written), sd falls back to ``scipy.signal`` itself, with the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: What the cache files say they are (a file without it is not sd's and is never used).
FORMAT = "sd decimation filter 2"  # 2: with the sha256 of the coefficients


@dataclass(frozen=True)
class DecimationFilter:
    q: int
    sos: np.ndarray  # (sections, 6) float64, cheby1(8, 0.05, 0.8 / q, output="sos")
    zi: np.ndarray  # (sections, 2) float64, sosfilt_zi(sos)
    edge: int  # sosfiltfilt's default padding
    exact: bool  # sd's steps give scipy.signal.decimate's numbers bit for bit (else: call scipy)


def cache_dir() -> Path:
    """sd's cache folder: ``$SD_CACHE_DIR``, else ``$XDG_CACHE_HOME/sd``, else ``~/.cache/sd``."""
    if os.environ.get("SD_CACHE_DIR"):
        return Path(os.environ["SD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sd"


def _scipy_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("scipy")  # finds the package without importing it
    return Path(spec.origin).parent if spec and spec.origin else None


@lru_cache(maxsize=1)
def compiled_sosfilt() -> Callable | None:
    """scipy's compiled ``_sosfilt(sos, x, zi)`` (filters ``x`` (signals, samples), C-ordered
    float64, in place, and updates ``zi`` (signals, sections, 2)), or None where it cannot be
    loaded on its own. Loaded from ``scipy/signal/_sosfilt*.so`` without running
    ``scipy.signal``'s package initialisation; where ``scipy.signal`` is already imported, its own."""
    import sys

    mod = sys.modules.get("scipy.signal._sosfilt")
    if mod is None:
        try:
            import importlib.machinery
            import importlib.util

            folder = _scipy_dir()
            suffixes = importlib.machinery.EXTENSION_SUFFIXES
            path = next((folder / "signal" / f"_sosfilt{s}" for s in suffixes
                         if folder and (folder / "signal" / f"_sosfilt{s}").is_file()), None)
            if path is None:
                return None
            spec = importlib.util.spec_from_file_location("scipy.signal._sosfilt", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001 - any failure: scipy.signal's sosfilt is used instead
            return None
    return getattr(mod, "_sosfilt", None)


def odd_ext(x: np.ndarray, n: int) -> np.ndarray:
    """``scipy.signal._arraytools.odd_ext(x, n)`` of a 1-D signal (the same arithmetic)."""
    return np.concatenate((2 * x[:1] - x[n:0:-1], x, 2 * x[-1:] - x[-2 : -(n + 2) : -1]))


def filtfilt_decimate(f: DecimationFilter, x: np.ndarray, sosfilt: Callable) -> np.ndarray:
    """``scipy.signal.decimate(x, f.q, zero_phase=True)`` of a 1-D float64 signal longer than
    ``f.edge`` samples, by its own steps: odd extension, ``sosfilt`` (the compiled routine of
    :func:`compiled_sosfilt`) forwards from ``zi * x[0]`` and backwards from ``zi * y[-1]``,
    every q-th sample. The arrays are passed as scipy's ``sosfilt`` passes them: (1, samples)
    C-ordered, ``zi`` (1, sections, 2), filtered in place."""
    y = odd_ext(x, f.edge).reshape(1, -1)
    sosfilt(f.sos, y, np.ascontiguousarray((f.zi * y[0, :1]).reshape(1, -1, 2)))
    back = np.ascontiguousarray(y[:, ::-1])
    sosfilt(f.sos, back, np.ascontiguousarray((f.zi * back[0, :1]).reshape(1, -1, 2)))
    return back[0, ::-1][f.edge : -f.edge][:: f.q]


def _key() -> str:
    """What the filter's bits may depend on: versions, architecture, numpy's CPU features."""
    import importlib.metadata

    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    text = json.dumps({"format": FORMAT, "scipy": importlib.metadata.version("scipy"), "numpy": np.__version__,
                       "machine": platform.machine(), "cpu": sorted(k for k, v in features.items() if v)})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _hex(a: np.ndarray) -> list:
    return [[float(v).hex() for v in row] for row in np.atleast_2d(a)]


def _unhex(rows: list) -> np.ndarray:
    return np.array([[float.fromhex(v) for v in row] for row in rows], dtype=np.float64)


def _design(q: int) -> DecimationFilter:
    """The filter designed by scipy, and whether sd's steps give scipy's numbers bit for bit."""
    from scipy.signal import cheby1, sosfilt_zi
    from scipy.signal import decimate as scipy_decimate

    sos = cheby1(8, 0.05, 0.8 / q, output="sos")
    zi = sosfilt_zi(sos)
    # sosfiltfilt's default padlen: 3 * (2 * sections + 1 - zeros at z = 0)
    edge = 3 * (2 * len(sos) + 1 - min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum())))
    f = DecimationFilter(q, sos, zi, edge, True)
    rng = np.random.default_rng(0)
    probes = [rng.standard_normal(n) * 1e-5 for n in (64 * q + 7, edge + 1, 5000)]
    fast = compiled_sosfilt()
    same = fast is not None and all(
        np.array_equal(filtfilt_decimate(f, p, fast), scipy_decimate(p, q, zero_phase=True)) for p in probes)
    return DecimationFilter(q, sos, zi, edge, same)


def _digest(d: dict) -> str:
    """sha256 of what a cache file says the filter is (format, q, coefficients, padding, exact)."""
    keys = ("format", "q", "sos", "zi", "edge", "exact")
    return hashlib.sha256(json.dumps([d.get(k) for k in keys]).encode()).hexdigest()


def _read(path: Path, q: int) -> DecimationFilter | None:
    """The cached filter, or None when the file is not sd's of this format, or its digest does
    not match (an edited coefficient would otherwise change every image silently)."""
    try:
        d = json.loads(path.read_text())
        if d.get("format") != FORMAT or d.get("q") != q or d.get("sha256") != _digest(d):
            return None
        return DecimationFilter(q, _unhex(d["sos"]), _unhex(d["zi"]), int(d["edge"]), bool(d["exact"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_once(path: Path, f: DecimationFilter) -> None:
    """Write the cache file unless a file is there already (never replaced)."""
    import tempfile

    record = {"format": FORMAT, "q": f.q, "sos": _hex(f.sos), "zi": _hex(f.zi), "edge": f.edge, "exact": f.exact,
              "checked": "sd's steps against scipy.signal.decimate on probe signals"}
    data = json.dumps({**record, "sha256": _digest(record)}, indent=1)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.link(tmp, path)  # fails where a file is there: nothing is replaced
        finally:
            os.unlink(tmp)
    except OSError:
        pass  # a folder that cannot be written, or another process wrote it first


@lru_cache(maxsize=16)
def decimation_filter(q: int) -> DecimationFilter:
    """The decimation filter for factor ``q``: from sd's cache, else designed and checked with
    scipy (and cached)."""
    path = cache_dir() / f"decimate-q{q}-{_key()}.json"
    if path.is_file():
        got = _read(path, q)
        if got is not None:
            return got
        return _design(q)  # a file sd cannot read or that was changed: designed again, the file left as it is
    f = _design(q)
    _write_once(path, f)
    return f
