"""``sd generate``: synthetic spectrograms in the processed layout.

```
<out>/<split>/gen-<labels>/<recording>-<i>.png
<out>/<split>/metadata.csv                      (file names relative to the split folder)
<out>/<split>-metadata.csv  metadata.csv  generation.json
```

Every image of one class combination belongs to one synthetic "subject" ``gen-<values>`` (e.g.
``gen-PD-F``; ``gen-any`` without class conditions), so per-subject splitting keeps a
combination together. ``recording`` is ``seed<seed>`` and ``window`` the image's index within
its subject. Rows carry the canonical columns, the conditioned label columns, ``generated`` = 1
and the data set plugin's caption, so ``sd train`` and evaluation read them like real data.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sd_core.data.labels import LabelSpec
from sd_core.errors import SdError

GENERATION = "generation.json"


def subject_name(spec: LabelSpec, item: dict) -> str:
    values = [item["labels"].get(t.name, "") for t in spec.categorical]
    values = [re.sub(r"[^A-Za-z0-9.]+", "_", v) for v in values if v != ""]
    return "gen-" + ("-".join(values) if values else "any")


def _records(out: Path):
    """The manifest and intent log of a generated folder (see sd_core.runs.owned)."""
    from sd_core.preprocess.layout import read_json
    from sd_core.runs.owned import STATE_DIR, IntentLog, Manifest

    legacy: list[str] = []
    if (out / GENERATION).is_file() and not (out / STATE_DIR).exists():  # written by an older sd
        try:
            split = read_json(out / GENERATION)["split"]
            from sd_core.data.sources import Source, read_metadata

            legacy = [GENERATION, "metadata.csv", f"{split}-metadata.csv",
                      *(r["file_name"] for r in read_metadata(Source(out)))]
        except Exception:
            legacy = []
    return Manifest(out, legacy=legacy), IntentLog(out / STATE_DIR / "generate.writing")


def prepare_output(out: Path, overwrite: bool, split: str = "train") -> None:
    """Refuse to mix with an existing data set unless --overwrite, which deletes only the files
    sd wrote there (a user's own files stay; one changed since sd wrote it stops the deletion)."""
    from sd_core.runs.owned import remove_files

    if not out.exists():
        return
    manifest, log = _records(out)
    known = {**manifest.files, **{r: None for r in log.read()}}
    present = sorted(r for r in known if (out / r).exists())
    if present and not overwrite:
        raise SdError(f"{out} already holds a generated data set ({present[0]}); choose another --out or "
                      "pass --overwrite to replace it (only files sd wrote are deleted)")
    for rel in (f"{split}-metadata.csv", f"{split}/metadata.csv", "metadata.csv", GENERATION):
        manifest.check(rel)  # before anything is deleted or sampled
    if present:
        remove_files(out, known)
    manifest.forget(list(manifest.files))
    log.remove()


def generate_dataset(run: Path, out: Path, n: int, conditions: Sequence[dict] = (), balanced: bool = False,
                     steps: int = 25, scheduler: str = "dpm", guidance: float = 2.0, seed: int = 0,
                     split: str = "train", batch_size: int = 32, dataset: str | None = None,
                     overwrite: bool = False, device: str = "cpu", console: Any = None,
                     registry: Any = None, spec: LabelSpec | None = None, prompt: str | None = None) -> dict[str, Any]:
    """Generate images for a plan and write them with metadata; returns a summary.

    ``prompt``: free text every image is conditioned on instead of its caption (runs conditioned on
    captions); without ``conditions`` the labels are then left to the model (null), not drawn."""
    from sd_core.diffusion.model import check_run, load_run
    from sd_core.diffusion.sampling import make_scheduler, to_uint8
    from sd_core.preprocess.layout import dumps_json
    from sd_core.runs.lock import folder_lock
    from sd_core.runs.places import check_output_place

    if registry is None:
        from sd_core.plugins.registry import get_registry

        registry = get_registry()
    spec = spec or check_run(run)
    # before planning: a plan of a billion items alone would not fit
    _check_fits(out, n * (len(spec.combos) if balanced else max(1, len(conditions))), spec.image_size)
    items = _plan_items(spec, n, conditions, balanced, seed, dataset, prompt)
    check_output_place(out, GENERATION)  # before the lock, which makes out/.sd
    with folder_lock(out):  # one writer per output folder (sd_core.runs.lock)
        prepare_output(out, overwrite, split)
        loaded = load_run(run, device)
        encoder = loaded.text or loaded.model.caption_encoder
        if prompt is not None and encoder is None:
            raise SdError(f"--prompt: {run} is not conditioned on captions (train a stable-diffusion kind, or set "
                          "[model] text_encoder)")
        sched = make_scheduler(scheduler, loaded.scheduler_config)

        rows = _image_rows(spec, items, split, seed, prompt, registry)
        text = encoder.encode([r["caption"] for r in rows]) if encoder is not None else None
        images, seconds = _sample_images(loaded.model, sched, spec, items, text, steps, guidance, seed, batch_size,
                                         device, console)
        manifest = _write_images(out, split, rows, to_uint8(images).numpy())
        _write_metadata(manifest, split, rows, registry)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["subject"]] = counts.get(r["subject"], 0) + 1
        manifest.write_text(GENERATION, dumps_json({"run": str(run), "n": n, "images": len(rows), "steps": steps,
                                      "scheduler": scheduler, "guidance": guidance, "seed": seed, "split": split,
                                      "balanced": balanced, "conditions": [dict(c) for c in conditions],
                                      **({"prompt": prompt} if prompt is not None else {}),
                                      "image_size": spec.image_size, "datasets": spec.datasets,
                                      "seconds": round(seconds, 3), "per_subject": counts}))
        return {"out": out, "images": len(rows), "seconds": seconds, "per_subject": counts, "rows": rows}


def _check_fits(out: Path, count: int, size: int) -> None:
    """The images are held in memory (float32 and uint8) before they are written as PNGs: refuse
    a request that cannot fit the machine's memory or the output's disk."""
    from sd_core.runs.resources import check_disk, check_memory

    what = f"{count} generated images of {size}×{size}"
    check_memory(count * size * size * 5.0, what)
    check_disk(out, count * (size * size + 256.0), what)


def _plan_items(spec: LabelSpec, n: int, conditions: Sequence[dict], balanced: bool, seed: int,
                dataset: str | None, prompt: str | None) -> list[dict]:
    """What to generate: a data set and labels per image (none drawn for a bare ``prompt``)."""
    from sd_core.diffusion.plans import plan

    if prompt is not None and not conditions and not balanced:
        if n < 1:
            raise SdError("--n must be at least 1")
        return [{"dataset": dataset or spec.datasets[0], "labels": {}} for _ in range(n)]
    return plan(spec, n, conditions, balanced, seed, dataset)


def _image_rows(spec: LabelSpec, items: list[dict], split: str, seed: int, prompt: str | None,
                registry: Any) -> list[dict[str, Any]]:
    """The metadata row of each planned image: its synthetic subject, window, file name and caption."""
    from sd_core.diffusion.rows import caption, label_row
    from sd_core.preprocess.layout import image_rel_path

    rows: list[dict[str, Any]] = []
    per_subject: dict[str, int] = {}
    for it in items:
        subject = subject_name(spec, it)
        i = per_subject.get(subject, 0)
        per_subject[subject] = i + 1
        row = {"split": split, "subject": subject, "recording": f"seed{seed}", "window": i, "start": "",
               **label_row(spec, it), "generated": 1}
        row["file_name"] = image_rel_path(split, subject, row["recording"], i)
        row["caption"] = prompt if prompt is not None else caption(row, registry)
        rows.append(row)
    return rows


def _sample_images(model, sched, spec: LabelSpec, items: list[dict], text, steps: int, guidance: float,
                   seed: int, batch_size: int, device: str, console: Any):
    """The images of the plan, sampled with a progress bar; returns them and the seconds taken."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from sd_core.diffusion.plans import label_tensors
    from sd_core.diffusion.sampling import sample
    from sd_core.runs.progress import make_progress

    t0 = time.perf_counter()
    with make_progress(console, TextColumn("generating"), BarColumn(), MofNCompleteColumn(),
                       TimeRemainingColumn(), label="generate") as bar:
        task = bar.add_task("generating", total=len(items))
        images = sample(model, sched, label_tensors(spec, items), text, steps=steps, guidance=guidance,
                        seed=seed, batch_size=batch_size, device=device,
                        progress=lambda k: bar.advance(task, k))
    return images, time.perf_counter() - t0


def _write_images(out: Path, split: str, rows: list[dict[str, Any]], pixels):
    """The PNGs, each recorded in the intent log before and in the manifest after it is written;
    returns the manifest. A user's file in the way stops before anything is written."""
    import numpy as np
    from PIL import Image

    from sd_core.runs.files import atomic_write_bytes
    from sd_core.runs.owned import sha256_bytes

    manifest, log = _records(out)
    for rel in (f"{split}-metadata.csv", f"{split}/metadata.csv", "metadata.csv", GENERATION,
                *(r["file_name"] for r in rows)):
        manifest.check(rel)
    for row, img in zip(rows, pixels):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
        log.add(row["file_name"])
        atomic_write_bytes(out / row["file_name"], buf.getvalue())
        manifest.files[row["file_name"]] = sha256_bytes(buf.getvalue())
    manifest.save()
    log.remove()
    return manifest


def _write_metadata(manifest, split: str, rows: list[dict[str, Any]], registry: Any) -> None:
    """The metadata files: the canonical and label columns plus the data set plugins' own."""
    from sd_core.preprocess.layout import csv_text, metadata_columns, split_csv_text

    own: list[str] = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        try:
            own += [c for c in registry.dataset(ds).columns if c not in own]
        except SdError:
            pass
    columns = metadata_columns(own, rows)
    manifest.write_text(f"{split}-metadata.csv", csv_text(columns, rows))
    manifest.write_text(f"{split}/metadata.csv", split_csv_text(columns, rows, split))
    manifest.write_text("metadata.csv", csv_text(columns, rows))
