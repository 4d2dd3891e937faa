"""Threads of the engine: a pool that splits work over the cores, and BLAS kept to one thread.

numpy releases the GIL in its loops and matrix products, so plain threads run in parallel.
When each thread runs whole chunks (matrix products included), BLAS's own threads would only
compete with ours: :func:`single_threaded_blas` limits them with ``threadpoolctl`` meanwhile.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache

_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_LOCAL = threading.local()  # .inline: this thread already is one of the parallel workers
_LIMIT: int | None = None  # set_thread_limit: this process's share of the cores


def cores() -> int:
    """The cores this process may run on: those it may be scheduled on, fewer where a container's
    CPU quota (cgroup ``cpu.max``, or ``cpu.cfs_quota_us`` in cgroup v1) allows less."""
    try:
        n = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    quota = quota_cores()
    return n if quota is None else max(1, min(n, quota))


#: Where the cgroup file system is mounted (a test may point it elsewhere).
CGROUP_ROOT = "/sys/fs/cgroup"


@lru_cache(maxsize=1)
def quota_cores() -> int | None:
    """Cores' worth of CPU time the process's cgroup allows (quota / period, rounded up), or None."""
    import math
    from pathlib import Path

    root = Path(CGROUP_ROOT)
    try:  # cgroup v2: this process's group, as /proc/self/cgroup names it, else the root
        line = next((x for x in Path("/proc/self/cgroup").read_text().splitlines() if x.startswith("0::")), "")
        here = line[3:].strip().lstrip("/")
    except OSError:
        here = ""
    for folder in dict.fromkeys([root / here, root]):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
        except (OSError, ValueError):
            continue
    try:  # cgroup v1
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def n_threads() -> int:
    """Threads the engine uses: the cores this process may run on (or its share of them, see
    :func:`set_thread_limit`), at most 8."""
    n = cores() if _LIMIT is None else _LIMIT
    return max(1, min(n, 8))


def set_thread_limit(n: int | None, blas: int | None = None) -> None:
    """Use at most ``n`` threads in this process for the engine, and ``blas`` (default ``n``) for
    BLAS; None: no limit.

    Worker processes sharing the machine each take their share of the cores, so that threads
    times workers never exceed the cores (oversubscribed BLAS threads spin and wait: an SVD
    that takes 0.06 s can then take seconds)."""
    global _LIMIT, _POOL, _LIMITER
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True)
            _POOL = None
    if _LIMITER is not None:
        _LIMITER.restore_original_limits()
        _LIMITER = None
    _LIMIT = None if n is None else max(1, int(n))
    blas = _LIMIT if blas is None else max(1, int(blas))
    ctl = _controller() if blas is not None else None
    if ctl is not None:
        _LIMITER = ctl.limit(limits=blas)
    _STATE[:] = [_LIMIT, blas]


_STATE: list = [None, None]  # (engine, BLAS) limits now


@contextmanager
def thread_limit(n: int | None, blas: int | None = None):
    """:func:`set_thread_limit` for the duration of a block (the previous limits come back)."""
    before = list(_STATE)
    set_thread_limit(n, blas)
    try:
        yield
    finally:
        set_thread_limit(*before)


def is_inline() -> bool:
    return getattr(_LOCAL, "inline", False)


def parallel(fn, n_items: int) -> None:
    """Run ``fn(start, stop)`` over contiguous parts of ``range(n_items)``, one per core.

    Inside a part, nested calls run inline.
    """
    global _POOL
    parts = 1 if is_inline() else min(n_threads(), n_items)
    if parts <= 1:
        fn(0, n_items)
        return
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=n_threads(), thread_name_prefix="sd-spectrogram")
        pool = _POOL
    bounds = [n_items * i // parts for i in range(parts + 1)]
    futures = [pool.submit(fn, bounds[i], bounds[i + 1]) for i in range(1, parts)]
    fn(bounds[0], bounds[1])
    for fut in futures:
        fut.result()


def run_inline(fn):
    """``fn`` wrapped so that the calls it makes to :func:`parallel` run in its own thread."""

    def wrapped(*args):
        _LOCAL.inline = True
        try:
            return fn(*args)
        finally:
            _LOCAL.inline = False

    return wrapped


_LIMITER = None  # threadpoolctl's limiter of set_thread_limit, kept for the process's life


@lru_cache(maxsize=1)
def _controller():
    """threadpoolctl's view of the BLAS libraries loaded in this process (numpy's), or None."""
    from threadpoolctl import ThreadpoolController

    ctl = ThreadpoolController().select(user_api="blas")
    return ctl if ctl.lib_controllers else None


def blas_threads() -> list[int]:
    """Current thread counts of the BLAS libraries (empty if none was found)."""
    ctl = _controller()
    return [lib.num_threads for lib in ctl.lib_controllers] if ctl else []


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMIT = None  # threadpoolctl's limiter while any user is inside


@contextmanager
def single_threaded_blas():
    """BLAS on one thread while our own threads run whole chunks.

    Yields False (and changes nothing) when threadpoolctl finds no BLAS library.  The limit is
    process-wide: it is lifted when the last concurrent user leaves.
    """
    global _BLAS_USERS, _BLAS_LIMIT
    ctl = _controller()
    if ctl is None:
        yield False
        return
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_LIMIT = ctl.limit(limits=1)
        _BLAS_USERS += 1
    try:
        yield True
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMIT.restore_original_limits()
                _BLAS_LIMIT = None
