"""Will a request fit this machine?  Memory and disk checked before the work starts.

``--resolution 100000`` used to allocate its bases until a ``MemoryError`` traceback, and
``sd generate --n 1000000000`` just ran.  :func:`check_memory` and :func:`check_disk` compare
an estimate with what the machine has now and refuse in one line naming both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sd_core.errors import SdError


def gib(n: float) -> str:
    """A size in the largest binary unit that keeps it at 1 or more (``1.5 GiB``, ``16 KiB``)."""
    for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 2**k:
            return f"{n / 2**k:.1f} {unit}"
    return f"{int(n)} bytes"


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``; else physical memory), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def check_memory(need: float, what: str) -> None:
    """Refuse ``what`` when it needs more memory than is available."""
    have = available_memory()
    if have is not None and need > have:
        raise SdError(f"{what} would take about {gib(need)} of memory; this machine has {gib(have)} available")


def check_disk(folder: Path, need: float, what: str) -> None:
    """Refuse ``what`` when ``folder`` (or its nearest existing parent) has less free space."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise SdError(f"{what} would take about {gib(need)} of disk in {folder}; {gib(free)} is free there")
