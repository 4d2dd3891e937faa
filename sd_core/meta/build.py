"""``sd meta build``: a weighted mix of processed or generated sets, in the processed layout.

```
<out>/<split>/<component>/<subject>/<file>.png          (copies: <file>.copy<k>.png)
<out>/<split>/metadata.csv                              file names relative to the split folder
<out>/<split>-metadata.csv  metadata.csv                file names relative to <out>
<out>/meta.json   weights.png   README.md               rebuild record, diagnostics, dataset card
```

Images are copies of the components' files (copy-on-write clones where the file system has
them), or hard links with ``link = "hardlink"``; the components are never moved or changed.
Every file goes through the ownership manifest (:mod:`sd_core.runs.owned`), so ``--overwrite`` deletes only what a build wrote. The same components
and configuration give the same folder, byte for byte (``sd meta rebuild`` checks it).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from sd_core.data.sources import contained
from sd_core.errors import ConfigError, SdError
from sd_core.meta import weights as W
from sd_core.meta.components import META_JSON, Component

WEIGHTS_PNG = "weights.png"
CARD = "README.md"
#: columns a meta row adds to the processed layout's (before ``caption``)
META_COLUMNS = ("source", "weight")


@dataclass
class MetaPlan:
    """What a build writes: rows per split (with ``_src``, the file they link to)."""

    config: dict[str, Any]
    components: list[Component]
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    diagnostics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    factors: dict[str, float] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)


def _target_name(row: Mapping[str, str], split: str, component: str, copy: int) -> str:
    rel = str(row["file_name"])
    first, _, rest = rel.partition("/")
    rel = rest if first == row.get("split", split) and rest else rel
    if copy:
        stem, dot, ext = rel.rpartition(".")
        rel = f"{stem}.copy{copy}.{ext}" if dot else f"{rel}.copy{copy}"
    return f"{split}/{component}/{rel}"


def _weight_text(w: float) -> str:
    return repr(float(f"{w:.6g}"))  # always with a point: one type in every split


def plan_meta(config: Mapping[str, Any], components: Sequence[Component], registry: Any,
              where: str = "[meta]") -> MetaPlan:
    """Group, weight and name every row (no file is touched)."""
    from sd_core.plugins.captions import caption_of
    from sd_core.preprocess.layout import metadata_columns

    labels = list(config["labels"])
    present = {k for c in components for r in c.rows for k in r}
    missing = [lab for lab in labels if lab not in present]
    if missing:
        raise ConfigError(f"{where} labels: column(s) {', '.join(missing)} in none of the components' "
                          f"metadata; columns there: {', '.join(sorted(present - {'_root'}))}")
    plan = MetaPlan(dict(config), list(components))
    for split in config["splits"]:
        src = [(c, r) for c in components for r in c.rows if r.get("split") == split]
        groups = [W.group_of(r, labels) for _, r in src]
        weighted = split in config["weighted_splits"]
        rule = config["weighting"] if weighted else "none"
        per_group = W.rule_weights(groups, rule, float(config["max_sampling_weight"]))
        factor = 1.0
        if weighted:
            factor = W.factor_for(groups, per_group, int(config["size"]), float(config["factor"]))
        copies = W.copies_for(groups, per_group, factor)
        out = []
        for (comp, row), g, n in zip(src, groups, copies):
            base = {k: v for k, v in row.items() if not k.startswith("_")}
            base["split"] = split
            base["source"] = f"{comp.name}/{row['file_name']}"
            base["weight"] = _weight_text(per_group[g])
            base["caption"] = caption_of(base, registry)
            for k in range(n):
                out.append({**base, "file_name": _target_name(row, split, comp.name, k),
                            "_src": str(contained(comp.root, row["file_name"]))})
        plan.rows[split] = out
        plan.factors[split] = factor
        if weighted:
            plan.diagnostics[split] = W.diagnostics(groups, per_group, copies)
    own: list[str] = []
    for c in components:
        for ds in c.datasets:
            plugin = registry.datasets.get(ds)
            own += [col for col in getattr(plugin, "columns", ()) if col not in own]
    all_rows = [r for s in config["splits"] for r in plan.rows[s]]
    cols = [c for c in metadata_columns(own, [{k: v for k, v in r.items() if k != "_src"} for r in all_rows])
            if c not in META_COLUMNS]
    plan.columns = [*cols[:-1], *META_COLUMNS, cols[-1]]
    names = [r["file_name"] for r in all_rows]
    if len(set(names)) != len(names):
        raise SdError("two rows of the components map to one file name in the meta set")
    return plan


# -- writing ---------------------------------------------------------------------------------

def _records(out: Path):
    from sd_core.runs.owned import STATE_DIR, IntentLog, Manifest

    return Manifest(out), IntentLog(out / STATE_DIR / "meta.writing")


def _top_files(splits: Sequence[str]) -> list[str]:
    return [*(f"{s}-metadata.csv" for s in splits), *(f"{s}/metadata.csv" for s in splits),
            "metadata.csv", META_JSON, WEIGHTS_PNG, CARD]


def check_place(out: Path, components: Sequence[Component]) -> None:
    """Refuse an output folder that overlaps a component, or that the shared rule refuses
    (:func:`sd_core.runs.places.check_output_place`); before the lock, which makes ``out/.sd``."""
    from sd_core.runs.places import check_output_place

    res = out.resolve()
    for c in components:
        if res == c.root or c.root in res.parents or res in c.root.parents:
            raise SdError(f"output folder {out} and component {c.name} ({c.root}) overlap; choose "
                          "another output folder")
    check_output_place(out, META_JSON)


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding a set unless --overwrite, which deletes only files sd wrote."""
    from sd_core.runs.owned import remove_files

    if not out.exists():
        return
    manifest, log = _records(out)
    known = {**manifest.files, **{r: None for r in log.read()}}
    present = sorted(r for r in known if (out / r).exists())
    if present and not overwrite:
        raise SdError(f"{out} already holds a meta data set ({present[0]}); choose another --out or pass "
                      "--overwrite to replace it (only files sd wrote are deleted)")
    if present:
        remove_files(out, known)
    manifest.forget(list(manifest.files))
    log.remove()


_FICLONE = 0x40049409  # Linux ioctl: a copy-on-write clone (btrfs, XFS, bcachefs, OCFS2)


def _reflink(src: Path, tmp: Path) -> bool:
    """Clone ``src`` into ``tmp`` where the file system shares blocks copy-on-write; False
    elsewhere (nothing left at ``tmp``)."""
    try:
        import fcntl
    except ImportError:  # not on this platform
        return False
    try:
        with open(src, "rb") as a, open(tmp, "wb") as b:
            fcntl.ioctl(b.fileno(), _FICLONE, a.fileno())
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def _place(src: Path, dst: Path, link: str) -> str:
    """Put ``src`` at ``dst`` atomically (through a temporary name): a reflink where ``link`` is
    "auto" and the file system has them, a hard link for "hardlink" where it allows, else a copy;
    returns which ("reflink", "hardlink" or "copy")."""
    from sd_core.runs.files import atomic_write_bytes

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    if link == "auto" and _reflink(src, tmp):
        os.replace(tmp, dst)
        return "reflink"
    if link == "hardlink":
        try:
            os.link(src, tmp)
            os.replace(tmp, dst)
            return "hardlink"
        except OSError:
            tmp.unlink(missing_ok=True)
    with open(src, "rb") as fh:
        atomic_write_bytes(dst, fh.read())
    return "copy"


def _stated_size(row: Mapping[str, Any], components: Sequence[Component]) -> int | None:
    """The image size a row's component says its images have (preprocess.json's resolution,
    generation.json's image_size), None when it says none."""
    comp = next((c for c in components if row["source"].startswith(f"{c.name}/")), None)
    if comp is None:
        return None
    size = comp.info.get("parameters", {}).get("resolution") or comp.info.get("image_size")
    return int(size) if isinstance(size, (int, float)) else None


def check_png(src: Path, size: int | None) -> None:
    """Refuse an image that does not decode as the greyscale PNG (of ``size`` pixels a side) its
    set says it is, before anything links or copies it."""
    from PIL import Image

    try:
        with Image.open(src) as im:
            im.verify()
            what = (im.format, im.mode, im.size)
    except (OSError, SyntaxError, ValueError) as exc:
        raise SdError(f"image {src} does not decode as a PNG ({exc})") from None
    if what[0] != "PNG" or what[1] != "L" or (size and what[2] != (size, size)):
        want = f"a {size}×{size} greyscale PNG" if size else "a greyscale PNG"
        raise SdError(f"image {src} is {what[0]} {what[1]} {what[2][0]}×{what[2][1]}, not {want} as its set says")


def write_meta(plan: MetaPlan, out: Path, registry: Any, overwrite: bool = False,
               progress: Any = None) -> dict[str, Any]:
    """Write the planned set into ``out``; returns a summary (files, links, copies)."""
    from sd_core.meta.card import card_text
    from sd_core.meta.plot import weights_png
    from sd_core.preprocess.layout import csv_text, dumps_json, split_csv_text
    from sd_core.runs.lock import folder_lock
    from sd_core.runs.owned import sha256_file

    check_place(out, plan.components)
    with folder_lock(out):  # one writer per output folder (sd_core.runs.lock)
        splits = list(plan.config["splits"])
        prepare_output(out, overwrite)
        out.mkdir(parents=True, exist_ok=True)
        manifest, log = _records(out)
        rows = [r for s in splits for r in plan.rows[s]]
        for rel in (*_top_files(splits), *(r["file_name"] for r in rows)):
            manifest.check(rel)  # a user's file in the way stops before anything is written
        digests: dict[str, str] = {}
        placed: Counter = Counter()
        link = plan.config["link"]
        for i, r in enumerate(rows):
            src = Path(r["_src"])
            if not src.is_file():
                raise SdError(f"image {src} is missing (listed in the metadata of its component)")
            if r["_src"] not in digests:
                check_png(src, _stated_size(r, plan.components))
                digests[r["_src"]] = sha256_file(src)
            log.add(r["file_name"])
            placed[_place(src, out / r["file_name"], link)] += 1
            manifest.files[r["file_name"]] = digests[r["_src"]]
            if progress and i % 200 == 199:
                progress(i + 1, len(rows))
        manifest.save()
        log.remove()
        cols = plan.columns
        for s in splits:
            manifest.write_text(f"{s}-metadata.csv", csv_text(cols, plan.rows[s]))
            if plan.rows[s]:
                manifest.write_text(f"{s}/metadata.csv", split_csv_text(cols, plan.rows[s], s, rows))
        manifest.write_text("metadata.csv", csv_text(cols, rows))
        record = meta_record(plan)
        manifest.write_text(META_JSON, dumps_json(record))
        if plan.diagnostics:
            manifest.write_bytes(WEIGHTS_PNG, weights_png(plan.diagnostics))
        manifest.write_text(CARD, card_text(plan, record, registry))
        return {"out": out, "rows": {s: len(plan.rows[s]) for s in splits}, "files": len(rows),
                "linked": placed["hardlink"], "reflinked": placed["reflink"], "copied": placed["copy"]}


def meta_record(plan: MetaPlan) -> dict[str, Any]:
    """meta.json: the configuration, the components (with a hash of their metadata) and counts."""
    from sd_core import __version__

    return {
        "sd_version": __version__,
        "config": plan.config,
        "components": [c.describe() for c in plan.components],
        "weighted": plan.config["weighting"] != "none" and bool(plan.config["weighted_splits"]),
        "rows": {s: len(plan.rows[s]) for s in plan.config["splits"]},
        "factors": {s: round(f, 9) for s, f in plan.factors.items()},
        "columns": plan.columns,
        "diagnostics": plan.diagnostics,
    }


def build_from_config(config: Mapping[str, Any], components: Sequence[Component], out: Path,
                      registry: Any, overwrite: bool = False, progress: Any = None,
                      where: str = "[meta]") -> tuple[MetaPlan, dict[str, Any]]:
    plan = plan_meta(config, components, registry, where)
    return plan, write_meta(plan, out, registry, overwrite, progress)


def rebuild(source: Path, out: Path, registry: Any, overwrite: bool = False,
            progress: Any = None) -> tuple[MetaPlan, dict[str, Any]]:
    """Build again from ``source``'s meta.json (into ``out``, which may be ``source`` itself)."""
    from sd_core.meta.components import components_from_record, read_meta_json
    from sd_core.meta.config import check_config

    record = read_meta_json(source)
    where = str(source / META_JSON)
    if record is None:
        raise SdError(f"{source} is not a meta data set (no {META_JSON})")
    config = check_config(record.get("config"), where)
    components = components_from_record(record.get("components", []), where)
    if out.resolve() == source.resolve():
        overwrite = True
    return build_from_config(config, components, out, registry, overwrite, progress, where)
