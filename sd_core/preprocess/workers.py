"""The worker processes of ``sd preprocess``: spawned clean, their share of the cores each, and
gone when the run's process goes."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def pool(workers: int, threads: int = 0) -> ProcessPoolExecutor:
    """Worker processes that live for the run (their imports are paid once each), each with its
    share of the cores for its threads, so that threads × workers never exceed the cores."""
    from sd_core.spectrogram.threads import cores

    # spawn: workers start clean (no inherited threads or open files from the parent)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=start_worker,
                               initargs=(threads or max(1, cores() // workers), os.getpid()))


def start_worker(threads: int, parent: int) -> None:
    from sd_core.spectrogram.threads import set_thread_limit

    _die_with(parent)
    set_thread_limit(threads, blas=1)


def _die_with(parent: int) -> None:
    """A worker ends when the run's process dies (kill -9 included): an orphan would go on writing
    into the output after the run's lock has gone, under the rerun's feet. Linux's
    PR_SET_PDEATHSIG; elsewhere workers end when they find the pool gone."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the call took effect
        os._exit(1)
