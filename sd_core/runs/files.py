"""Atomic file writing: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give; mkstemp alone gives 0600


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", fsync: bool = False, **kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on success it replaces ``path`` in one rename.

    A crash leaves either the old file or the new one, never half a file (temporary files
    start with ``.`` and end with ``.tmp`` so that they are easy to clean).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:  # only against power loss; a killed process never leaves half a file
                os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not exc.filename and exc.errno:  # a write's error: name the file
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        raise


def read_text(path: str | os.PathLike, error: type[Exception] | None = None, what: str = "") -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped). A file that cannot be read or is
    not UTF-8 raises ``error`` (default :class:`sd_core.errors.DatasetError`) in one line that
    names the file (after ``what``, such as "split file") and, for bad bytes, their line."""
    from sd_core.errors import DatasetError

    error = error or DatasetError
    name = f"{what} {path}" if what else str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"{name} cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{name} line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file "
                    "as UTF-8") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


#: OSError numbers the machine causes (full disk, read-only folder, ulimit -f, no permission):
#: they stop a command (one line naming the file), never count as one recording's failure
RESOURCE_FAULTS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for this process's file-size limit (ulimit -f)",
}


#: those that stop a whole run where they meet a write (a permission error on one recording's file
#: stays that recording's failure)
_STOPPING = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def is_resource_fault(exc: BaseException) -> bool:
    """A full disk, quota, read-only file system or file-size limit (see :data:`_STOPPING`)."""
    return isinstance(exc, OSError) and exc.errno in _STOPPING
