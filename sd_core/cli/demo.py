"""``sd demo``: every stage that exists, on the embedded synthetic data of each dataset plugin."""

from __future__ import annotations

import time
from pathlib import Path

import click

from sd_core.cli.output import console, table

#: Preprocessing parameters of the demo: small images so that later stages train quickly on a CPU.
DEMO_PREPROCESS = {"fs": 125.0, "nsamps": 500, "overlap": 0.5, "resolution": 128, "bins": "log",
                   "splits": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 0}
DONE_MARKER = ".sd-demo-complete"


def write_demo_raw(plugin, root: Path, seed: int) -> bool:
    """Write the plugin's demo data set once; returns False if it was already there."""
    marker = root / DONE_MARKER
    if marker.exists():
        return False
    plugin.write_demo(root, seed=seed)
    marker.write_text("written by sd demo\n")
    return True


def example_grid(out: Path, target: Path, columns=(), per_split: int = 4) -> Path | None:
    """A contact sheet of a few processed images per split, with their captions' labels."""
    import csv

    from PIL import Image, ImageDraw

    tiles = []
    for split in ("train", "val", "test"):
        meta = out / f"{split}-metadata.csv"
        if not meta.is_file():
            continue
        with open(meta, newline="") as fh:
            rows = list(csv.DictReader(fh))
        step = max(1, len(rows) // per_split)
        tiles += rows[::step][:per_split]
    if not tiles:
        return None
    size = 160
    sheet = Image.new("L", (size * per_split, (size + 14) * ((len(tiles) + per_split - 1) // per_split)), 40)
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(tiles):
        x, y = (i % per_split) * size, (i // per_split) * (size + 14)
        img = Image.open(out / r["file_name"]).resize((size - 4, size - 4), Image.NEAREST)
        sheet.paste(img, (x + 2, y + 14))
        own = " ".join(f"{c}={r.get(c, '')}" for c in columns[:1])
        draw.text((x + 3, y + 1), f"{r['split']} {r['subject']} {r['gender']} {own}", fill=230)
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target)
    return target


@click.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="sd-demo", show_default=True,
              help="Folder for the demo's raw data, processed data and report (reused on rerun).")
@click.option("--dataset", "-d", "only", multiple=True, help="Only these data sets (default: all with a demo).")
@click.option("--workers", type=int, default=2, show_default=True, help="Preprocessing worker processes.")
@click.option("--seed", type=int, default=0, show_default=True)
def demo(workdir: str, only: tuple[str, ...], workers: int, seed: int) -> None:
    """Run every stage on embedded synthetic data: write each data set's demo recordings in its
    native format, preprocess them, and report."""
    from rich.markup import escape

    from sd_core.errors import SdError
    from sd_core.plugins import get_registry
    from sd_core.preprocess import preprocess_dataset

    c = console()
    work = Path(workdir).resolve()
    reg = get_registry()
    names = list(only) or [n for n, p in reg.datasets.items() if p.has_demo]
    for n in names:
        reg.dataset(n)
    skipped = [n for n, p in reg.datasets.items() if not p.has_demo and n not in only]
    c.print(f"[bold]sd demo[/] in {work}")
    c.print(f"plugins: {', '.join(f'{p.name} {p.version}' for p in reg.plugins.values())}")
    if skipped:
        c.print(f"no demo writer yet: {', '.join(skipped)}")
    if not names:
        c.print("[yellow]No installed data set plugin can write demo data; nothing to preprocess.[/]")
        return

    report = table("sd demo: preprocessing", ["data set", "raw (native format)", "subjects",
                                              "images train/val/test", "failed", "seconds"])
    failures = 0
    for name in names:
        plugin = reg.dataset(name)
        raw, out = work / "raw" / name, work / "processed" / name
        t0 = time.monotonic()
        try:
            with c.status(f"{name}: writing demo recordings"):
                write_demo_raw(plugin, raw, seed)
            with c.status(f"{name}: preprocessing"):
                res = preprocess_dataset(plugin, raw, out, DEMO_PREPROCESS, list(plugin.channels),
                                         {k: o.default for k, o in dict(plugin.options).items()},
                                         workers=workers)
        except SdError as exc:
            failures += 1
            c.print(f"[red]{name}: {escape(str(exc))}[/]")
            continue
        grid = example_grid(out, work / "report" / f"{name}-examples.png", tuple(plugin.columns))
        n_files = sum(1 for p in raw.rglob("*") if p.is_file())
        report.add_row(name, f"{n_files} files", str(res.subjects),
                       "/".join(str(res.images.get(s, 0)) for s in ("train", "val", "test")),
                       str(len(res.failed_subjects)), f"{time.monotonic() - t0:.1f}")
        for e in res.errors:
            c.print(f"[red]{name}: {escape(e)}[/]")
        if grid:
            c.print(f"{name}: example images in {grid}")
    c.print(report)
    c.print(f"processed data sets in {work / 'processed'} (set output in \\[datasets.<name>] of sd.toml to reuse them)")
    if failures:
        raise SdError(f"{failures} data set(s) failed in the demo")
