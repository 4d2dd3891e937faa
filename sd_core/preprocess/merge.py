"""Merging a run's per-subject states into the metadata CSVs and ``preprocess.json``."""

from __future__ import annotations

from pathlib import Path

from sd_core.errors import SdError
from sd_core.plugins.dataset import DatasetPlugin
from sd_core.preprocess import layout
from sd_core.preprocess.params import package_versions
from sd_core.preprocess.splits import SPLIT_ORDER
from sd_core.runs.owned import remove_files


def merge_dataset(plugin: DatasetPlugin, out: Path) -> dict[str, int]:
    """Assemble the metadata CSVs and ``preprocess.json`` from the per-subject states.

    Used at the end of every unsharded run and by ``sd preprocess --merge`` once all shards
    (possibly run on other machines, their outputs copied into ``out``) have finished.
    Returns the number of images per split.
    """
    ppath = layout.params_path(out)
    if not ppath.is_file():
        raise SdError(f"{out} holds no preprocessing run to merge (no {ppath.relative_to(out)})")
    run = layout.read_json(ppath)
    assignment: dict[str, str] = run["splits"]
    missing = [s for s in sorted(assignment) if not layout.subject_state_path(out, s).is_file()]
    if missing:
        raise SdError(
            f"cannot merge {out}: {len(missing)} subject(s) not processed yet "
            f"({', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}); run the remaining shards first"
        )
    states = {s: layout.read_json(layout.subject_state_path(out, s)) for s in sorted(assignment)}
    rows_by_split: dict[str, list[dict]] = {s: [] for s in SPLIT_ORDER}
    for sid, state in states.items():
        rows_by_split[assignment[sid]].extend(state["rows"])
    all_rows = [r for s in SPLIT_ORDER for r in rows_by_split[s]]
    columns = layout.metadata_columns(plugin.columns, all_rows)
    requested = [s for s in SPLIT_ORDER if run["parameters"]["splits"].get(s, 0) > 0]
    manifest = layout.manifest_of(out)
    inside = [s for s in requested if rows_by_split[s]]  # <split>/metadata.csv for Hugging Face datasets
    for rel in (*(f"{s}-metadata.csv" for s in requested), *(f"{s}/metadata.csv" for s in inside),
                "metadata.csv", "preprocess.json"):
        manifest.check(rel)  # before writing any: a user's file in the way stops the merge
    for split in requested:
        manifest.write_text(f"{split}-metadata.csv", layout.csv_text(columns, rows_by_split[split]))
    for split in inside:
        text = layout.split_csv_text(columns, rows_by_split[split], split, all_rows)
        manifest.write_text(f"{split}/metadata.csv", text)
    stale = {f"{s}/metadata.csv" for s in SPLIT_ORDER if s not in inside} & set(manifest.files)
    if stale:  # a split that lost its rows (sd wrote the file, so it may go)
        remove_files(out, {r: manifest.files[r] for r in stale})
        manifest.forget(stale)
    manifest.write_text("metadata.csv", layout.csv_text(columns, all_rows))
    counts = {s: len(rows_by_split[s]) for s in requested}
    manifest.write_text("preprocess.json", layout.dumps_json({
        "dataset": plugin.name,
        "parameters": run["parameters"],
        "versions": package_versions(plugin),
        "images": counts,
        "columns": columns,
        "subjects": {
            sid: {"split": assignment[sid], "status": st["status"], "images": st["images"],
                  "errors": st["errors"], "notes": st["notes"],
                  **({"tracebacks": st["tracebacks"]} if st.get("tracebacks") else {})}
            for sid, st in states.items()
        },
    }))
    return counts

