"""The components of a meta data set: processed or generated folders, found by name or path."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sd_core.errors import ConfigError, DatasetError

META_JSON = "meta.json"


@dataclass
class Component:
    """One folder in the processed layout that a meta set draws from.

    name:  its folder under each split of the meta set and the prefix of ``source``.
    entry: what the config file said (a data set name or a folder).
    kind:  ``processed`` (preprocess.json), ``generated`` (generation.json) or ``folder``.
    info:  the folder's preprocess.json or generation.json.
    """

    name: str
    entry: str
    root: Path
    kind: str
    info: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def datasets(self) -> list[str]:
        return sorted({r.get("dataset", "") for r in self.rows} - {""})

    def describe(self) -> dict[str, Any]:
        """What meta.json records (enough to find the folder again and see it unchanged)."""
        from sd_core.runs.owned import sha256_file

        return {"name": self.name, "entry": self.entry, "root": str(self.root), "kind": self.kind,
                "datasets": self.datasets, "rows": len(self.rows),
                "metadata_sha256": sha256_file(self.root / "metadata.csv")}


def _read_info(root: Path) -> tuple[str, dict[str, Any]]:
    for kind, name in (("processed", "preprocess.json"), ("generated", "generation.json")):
        path = root / name
        if path.is_file():
            try:
                return kind, json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: cannot be read ({exc})") from None
    return "folder", {}


def load_component(name: str, entry: str, root: Path, dataset: str = "") -> Component:
    """Read one folder's rows (all splits) and its preprocess.json / generation.json."""
    from sd_core.data.sources import Source, read_metadata

    if (root / META_JSON).is_file():
        raise ConfigError(f"[meta] components: {root} is a meta data set itself; combine its "
                          "components instead")
    rows = read_metadata(Source(root, dataset))
    kind, info = _read_info(root)
    return Component(name, entry, root.resolve(), kind, info, rows)


def resolve_components(entries: Sequence[str], base: Path, project: Any, registry: Any,
                       where: str) -> list[Component]:
    """A data set name of an installed plugin reads its output folder (sd.toml); anything else
    is a folder, relative to ``base`` (the config file's folder)."""
    out: list[Component] = []
    used: set[str] = set()
    for entry in entries:
        if entry in registry.datasets:
            root, dataset, name = project.output_dir(entry), entry, entry
        else:
            root = Path(entry).expanduser()
            root = root if root.is_absolute() else (base / root)
            if not root.is_dir():
                raise ConfigError(f"{where}: {entry!r} is neither an installed data set ("
                                  + (", ".join(sorted(registry.datasets)) or "none")
                                  + f") nor a folder ({root} does not exist)")
            dataset, name = "", root.resolve().name
        unique, k = name, 2
        while unique in used:
            unique, k = f"{name}-{k}", k + 1
        used.add(unique)
        out.append(load_component(unique, entry, Path(root), dataset))
    return out


def components_from_record(record: Sequence[dict[str, Any]], where: str) -> list[Component]:
    """The components a meta.json names, checked unchanged since the set was built."""
    from sd_core.runs.owned import sha256_file

    out = []
    for c in record:
        root = Path(c["root"])
        comp = load_component(c["name"], c["entry"], root)
        digest = sha256_file(root / "metadata.csv")
        if digest != c["metadata_sha256"]:
            raise DatasetError(f"{where}: component {c['name']!r} ({root}) changed since the meta set "
                               "was built (its metadata.csv differs); a rebuild would not be the same")
        out.append(comp)
    return out


def read_meta_json(root: Path) -> dict[str, Any] | None:
    """A meta folder's meta.json, or None when ``root`` is not a meta folder."""
    path = Path(root) / META_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None
