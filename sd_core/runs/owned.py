"""What ``sd`` wrote in an output folder, so that it deletes or replaces only that.

Two records, both under ``<root>/.sd/``:

* a **manifest** ``written.json``: relative path → SHA-256 of the bytes sd wrote there;
* **intent logs** ``*.writing``: one relative path per line, appended (and flushed) *before* the
  file is written, so that a run killed half-way still knows which files are its own.

A file may be replaced or deleted only when it is absent, listed in an intent log, or listed in
the manifest with the hash it still has. Anything else in the way is refused with an
:class:`SdError` that names the file; a user's own files are never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from sd_core.errors import SdError
from sd_core.runs.files import atomic_write_bytes, atomic_write_text

STATE_DIR = ".sd"
MANIFEST = "written.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def not_ours(path: Path, why: str = "was not written by sd") -> SdError:
    return SdError(f"{path} {why}; sd does not replace or delete it (move it away, or choose "
                   "another output folder)")


def check_replaceable(root: Path, rel: str, known: Mapping[str, str | None]) -> None:
    """Refuse when ``root/rel`` exists and is not a file sd can show it wrote.

    ``known`` maps paths sd wrote to their hash (``None``: written, hash unknown, e.g. listed in
    an intent log or by an older sd)."""
    path = root / rel
    _no_link_on_the_way(root, rel)
    if not (path.exists() or path.is_symlink()):
        return
    if rel not in known or path.is_symlink() or not path.is_file():
        raise not_ours(path)
    digest = known[rel]
    if digest is not None and sha256_file(path) != digest:
        raise not_ours(path, "was changed since sd wrote it")


def _no_link_on_the_way(root: Path, rel: str) -> None:
    """Refuse a path whose folders below ``root`` include a symbolic link: sd never writes or
    deletes through a link it did not create (a subject folder replaced by a link to a user's
    folder would otherwise receive, or lose, the files)."""
    folder = root
    for part in Path(rel).parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise SdError(f"{folder} is a symbolic link (to {os.readlink(folder)}); sd does not write or delete "
                          "through a link it did not create: replace it with a folder, or choose another output")


class Manifest:
    """``<root>/.sd/written.json``: the files sd wrote at the top of an output folder."""

    def __init__(self, root: Path, legacy: Iterable[str] = ()) -> None:
        """``legacy``: paths taken as sd's (hash unknown) when there is no manifest yet, for
        folders written by an sd that kept none."""
        self.root = root
        self.path = root / STATE_DIR / MANIFEST
        # paths about to be written by write_bytes, logged first: a kill between the rename and the
        # manifest's save leaves a file sd can still show is its own
        self.log = IntentLog(root / STATE_DIR / "written.writing")
        self.pending = self.log.read()
        self.files: dict[str, str | None] = {}
        if not self.path.exists():
            self.files = {rel: None for rel in legacy}
        else:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.files = {str(k): str(v) for k, v in data["files"].items()}
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise SdError(f"{self.path}: not a manifest written by sd; sd cannot tell which files "
                              f"in {root} are its own") from None

    def check(self, rel: str) -> None:
        known = self.files if rel not in self.pending or rel in self.files else {**self.files, rel: None}
        check_replaceable(self.root, rel, known)

    def write_bytes(self, rel: str, data: bytes) -> None:
        self.check(rel)
        self.log.add(rel)
        self.pending.add(rel)
        atomic_write_bytes(self.root / rel, data)
        self.files[rel] = sha256_bytes(data)
        self.save()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def save(self) -> None:
        files = {k: v for k, v in sorted(self.files.items()) if v is not None}
        atomic_write_text(self.path, json.dumps({"files": files}, indent=1) + "\n")
        if self.pending and all(r in files for r in self.pending):  # every logged write is recorded
            self.log.remove()
            self.pending = set()

    def forget(self, rels: Iterable[str]) -> None:
        for rel in rels:
            self.files.pop(rel, None)
        self.save()


class IntentLog:
    """An append-only list of paths about to be written (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None

    def read(self) -> set[str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return set()
        return {line for line in text.splitlines() if line}

    def add(self, rel: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(rel + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def remove_files(root: Path, files: Mapping[str, str | None]) -> list[Path]:
    """Delete files sd wrote (checking every one first), then the folders that became empty.

    A listed file that is missing is skipped; one that changed since sd wrote it stops the whole
    removal before anything is deleted."""
    present = []
    for rel in sorted(files):
        path = root / rel
        if path.exists() or path.is_symlink():
            check_replaceable(root, rel, files)
            present.append(path)
    for path in present:
        path.unlink()
    folders = sorted({p.parent for p in present} | {root / Path(r).parent for r in files},
                     key=lambda p: len(p.parts), reverse=True)
    for folder in folders:
        _remove_empty_up_to(folder, root)
    return present


def _remove_empty_up_to(folder: Path, root: Path) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty."""
    root = root.resolve()
    folder = folder.resolve()
    while folder != root and root in folder.parents:
        try:
            os.rmdir(folder)
        except FileNotFoundError:
            pass
        except OSError:  # not empty: stop here
            return
        folder = folder.parent
