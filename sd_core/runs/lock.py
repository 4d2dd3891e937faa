"""One writer per output or run folder: ``<folder>/.sd/lock``.

Two ``sd train`` into one ``--out`` at once, or two ``sd preprocess`` on one output, interleave
their writes and leave a folder neither run would have made (a state that says finished, with
checkpoints missing).  :func:`folder_lock` takes an exclusive ``flock`` on the folder's lock file
for as long as the command writes there; a second command refuses at once, naming the holder
(host, pid, command, start time, written into the file).  The kernel drops the lock when its
process dies, however it dies, so a stale lock file never blocks anyone: only a live holder does.
A holder that ends removes the file, so a finished folder holds no lock file.

Shards of one preprocessing job are meant to run at once: each takes the folder's lock shared
and its own shard's lock exclusively (:func:`folder_lock` with ``shard``), so two runs of the same
shard, or a whole run beside any shard, still refuse each other.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sd_core.errors import SdError
from sd_core.runs.owned import STATE_DIR

LOCK = "lock"


def _holder() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "command": " ".join(sys.argv[:3]),
            "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def _describe(path: Path) -> str:
    try:
        h = json.loads(path.read_text(encoding="utf-8") or "{}")
        return f"pid {h['pid']} on {h['host']} ({h.get('command', 'sd')}, since {h.get('started', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another sd process"


def _take(path: Path, exclusive: bool, folder: Path):
    """Open and flock ``path``; the file is the one at ``path`` when the lock is won (a releaser
    unlinks it: a lock won on an unlinked file is retried)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held until released)
        try:
            fcntl.flock(fh.fileno(), (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return fh  # a file system without flock (some network mounts): go on unlocked
            fh.close()
            raise SdError(f"{folder} is in use by {_describe(path)}; wait for it to finish "
                          "(its lock goes when that process ends)") from None
        try:
            if os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        fh.close()
    if exclusive:
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(_holder()))
        fh.flush()
    return fh


def _release(path: Path, fh, exclusive: bool) -> None:
    """Unlink the lock file and unlock: no lock file is left in a finished output.  A shared
    holder unlinks only when it is the last (its lock upgrades to exclusive at once)."""
    import fcntl

    with suppress(OSError):
        if not exclusive:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while others share it
        path.unlink()
    with suppress(OSError):
        fh.close()


@contextmanager
def folder_lock(folder: Path, shard: str = "") -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs (see the module's documentation); ``shard``
    ("K-of-N"): share the folder's lock, hold that shard's exclusively."""
    try:
        import fcntl  # noqa: F401
    except ImportError:  # no flock on this platform: no locking
        yield
        return
    folder = Path(folder)
    state = folder / STATE_DIR
    names = [(state / LOCK, not shard)] + ([(state / f"{LOCK}-{shard}", True)] if shard else [])
    held = []
    try:
        for path, exclusive in names:
            held.append((path, _take(path, exclusive, folder), exclusive))
        yield
    finally:
        for path, fh, exclusive in reversed(held):
            _release(path, fh, exclusive)
        with suppress(OSError):
            state.rmdir()  # only if the lock made it and nothing else is there


def main_process_lock(folder: Path):
    """:func:`folder_lock` in the main process of a distributed launch (``RANK`` 0 or unset, as
    accelerate and torchrun set it), nothing in the others: one command, one holder."""
    from contextlib import nullcontext

    return folder_lock(folder) if os.environ.get("RANK", "0") == "0" else nullcontext()
