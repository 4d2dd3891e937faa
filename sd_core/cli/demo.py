"""``sd demo``: every stage that exists, on the embedded synthetic data of each dataset plugin."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import click

from sd_core.runs.console import console, table

#: Preprocessing parameters of the demo: small images so that later stages train quickly on a CPU.
#: Half of the subjects train, a quarter each validate and test: with the demo's eight
#: Parkinson's subjects the test split then holds a patient and a control.
DEMO_PREPROCESS = {"fs": 125.0, "nsamps": 500, "overlap": 0.5, "resolution": 128, "bins": "log",
                   "splits": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 0}
DONE_MARKER = ".sd-demo-complete"
#: Written first into every folder the demo creates; the demo writes only where it finds it.
OWNER_MARKER = ".sd-demo"


def claim_folder(folder: Path, what: str) -> None:
    """Make ``folder`` the demo's: create it (with its marker), or accept it when it carries the
    marker (or an older demo's completion marker) or is empty. Anything else is a user's folder,
    which the demo never writes into."""
    from sd_core.errors import SdError

    if (folder / OWNER_MARKER).is_file() or (folder / DONE_MARKER).is_file():
        return
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        legacy = folder.is_dir() and any(folder.glob(f"raw/*/{DONE_MARKER}"))
        if not legacy:
            raise SdError(f"{folder} holds files the demo did not write; sd demo writes its {what} "
                          f"only into folders it created (marked {OWNER_MARKER}); choose a new or "
                          "empty folder with --workdir")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER_MARKER).write_text("created by sd demo; it may write and replace files here\n")


#: bump when the demo writers change what they write: an older demo's raw data is then rewritten
DEMO_DATA_VERSION = 2


def write_demo_raw(plugin, root: Path, seed: int, size: str = "small", kwargs: dict | None = None) -> bool:
    """Write the plugin's demo data set once, only into a folder the demo created; returns False
    if the same demo (writer version, seed, size) is already there. The marker lists every file
    written with its SHA-256, so that a demo of another size or version replaces exactly those
    files (a file changed since refuses the removal; nothing else is touched)."""
    import json

    from sd_core.runs.owned import remove_files, sha256_file

    marker = root / DONE_MARKER
    wanted = {"version": DEMO_DATA_VERSION, "seed": seed, "size": size, "arguments": kwargs or {}}
    if marker.exists():
        try:
            found = json.loads(marker.read_text())
        except ValueError:  # a marker of sd before version 2: plain text, no file list
            found = {}
        if {k: found.get(k) for k in wanted} == wanted:
            return False
        remove_files(root, found.get("files", {}))
        marker.unlink()
    claim_folder(root, "raw recordings")

    def hashes() -> dict[str, str]:
        return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*"))
                if p.is_file() and p.name not in (DONE_MARKER, OWNER_MARKER)}

    before = hashes()
    plugin.write_demo(root, seed=seed, **(kwargs or {}))
    files = {rel: h for rel, h in hashes().items() if before.get(rel) != h}  # what the writer wrote
    marker.write_text(json.dumps({**wanted, "files": files}, indent=1) + "\n")
    return True


def demo_sizes(plugins, size: str, scale: float, work: Path) -> dict[str, dict]:
    """Writer arguments per data set for ``--size``/``--scale``, after checking the free disk."""
    from sd_core.errors import ConfigError, SdError

    if not 0 < scale <= 1:
        raise ConfigError(f"--scale must be in (0, 1], not {scale}")
    out, need = {}, 0
    for plugin in plugins:
        try:
            out[plugin.name], nbytes = plugin.demo_size(size, scale)
        except ValueError as exc:
            raise SdError(f"{exc}; run it with --size small, or leave it out with -d") from None
        need += nbytes
    if need:
        free = shutil.disk_usage(work).free
        console().print(f"the {size}-size demo (scale {scale:g}) writes about {need / 1e9:.1f} GB of raw "
                        f"recordings, plus the processed images; {free / 1e9:.1f} GB free in {work}")
        if need * 1.5 > free:
            raise SdError(f"not enough disk for the {size}-size demo in {work}: it needs about "
                          f"{need * 1.5 / 1e9:.1f} GB (raw recordings and images), {free / 1e9:.1f} GB are free; "
                          "use a smaller --scale or another --workdir")
    return out


def made_with_other_parameters(plugin, out: Path, options) -> bool:
    """Whether the demo's processed folder was made by an sd whose demo parameters differ
    (the demo owns the folder, so it is then made again rather than refused)."""
    from sd_core.preprocess import layout
    from sd_core.preprocess.params import run_parameters

    path = layout.params_path(out)
    if not path.is_file():
        return False
    params = run_parameters(plugin.name, DEMO_PREPROCESS, list(plugin.channels), options, None)
    return layout.read_json(path).get("parameters") != params


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
@click.option("--size", type=click.Choice(["small", "full"]), default="small", show_default=True,
              help="small: a few subjects, minutes of recording; full: the real data sets' subject "
                   "counts and hours (times --scale), for benchmarks of scale.")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="With --size full: this fraction of the real subjects and hours.")
@click.option("--skip-training", is_flag=True, help="Stop after preprocessing.")
@click.option("--diffusion", "diffusion_dataset", default="parkinsons", show_default=True,
              help="Data set the demo's diffusion model learns (its main task is the condition); "
                   "'' skips the diffusion stage.")
@click.pass_context
def demo(ctx: click.Context, workdir: str, only: tuple[str, ...], workers: int, seed: int, size: str,
         scale: float, skip_training: bool, diffusion_dataset: str) -> None:
    """Run every stage on embedded synthetic data: write each data set's demo recordings in its
    native format, preprocess them, train a classifier on each data set's main task, train a
    tiny conditional diffusion model, generate a balanced set, and report."""
    from rich.markup import escape

    from sd_core.errors import SdError
    from sd_core.plugins.registry import get_registry
    from sd_core.preprocess import preprocess_dataset

    c = console()
    work = Path(workdir).resolve()
    claim_folder(work, "raw data, processed data, runs and report")
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

    sizes = demo_sizes([reg.dataset(n) for n in names], size, scale, work)
    done: dict[str, Path] = {}
    report = table("sd demo: preprocessing", ["data set", "raw (native format)", "subjects",
                                              "images train/val/test", "failed", "seconds"])
    failures = 0
    for name in names:
        plugin = reg.dataset(name)
        raw, out = work / "raw" / name, work / "processed" / name
        t0 = time.monotonic()
        try:
            with c.status(f"{name}: writing demo recordings"):
                wrote = write_demo_raw(plugin, raw, seed, size, sizes[name])
            options = {k: o.default for k, o in dict(plugin.options).items()}
            stale = made_with_other_parameters(plugin, out, options)
            if stale:
                c.print(f"{name}: the demo's parameters changed since {out} was made; making it again")
            with c.status(f"{name}: preprocessing"):
                res = preprocess_dataset(plugin, raw, out, DEMO_PREPROCESS, list(plugin.channels),
                                         options, workers=workers, overwrite=stale or (wrote and out.exists()))
        except SdError as exc:
            failures += 1
            c.print(f"[red]{name}: {escape(str(exc))}[/]")
            continue
        done[name] = out
        if res.results:  # images were (re)made: later stages start again for this data set
            for stage in (work / "runs" / f"{name}-classifier", work / "diffusion" / f"{name}-run"):
                shutil.rmtree(stage, ignore_errors=True)
        grid = example_grid(out, work / "report" / f"{name}-examples.png", tuple(plugin.columns))
        n_files = sum(1 for p in raw.rglob("*") if p.is_file())
        report.add_row(name, f"{n_files} files", str(res.subjects),
                       "/".join(str(res.images.get(s, 0)) for s in ("train", "val", "test")),
                       str(len(res.failed_subjects)), f"{time.monotonic() - t0:.1f}")
        for e in res.errors:
            c.print(f"[red]{name}: {escape(e)}[/]")
        if grid:
            c.print(f"{name}: example images in {grid}")
        from sd_core.preprocess.demo_figure import raw_figure

        traces = raw_figure(plugin, raw, work / "report" / f"{name}-raw.png", reg)
        if traces:
            c.print(f"{name}: raw traces with artefacts marked, and every subject's spectrum, in {traces}")
    c.print(report)
    c.print(f"processed data sets in {work / 'processed'} (set output in \\[datasets.<name>] of sd.toml to reuse them)")
    if not skip_training:
        failures += train_classifiers(ctx, reg, done, work)
        if diffusion_dataset in done:
            failures += diffusion_stage(reg, diffusion_dataset, done[diffusion_dataset], work, seed)
    if failures:
        raise SdError(f"{failures} data set(s) failed in the demo")


def train_classifiers(ctx: click.Context, reg, processed: dict[str, Path], work: Path) -> int:
    """Train the demo classifiers; returns the number of data sets that failed."""
    from rich.markup import escape

    from sd_core.cli import load_ctx_config
    from sd_core.errors import SdError
    from sd_core.training.demo import train_demo_classifier

    c = console()
    project = load_ctx_config(ctx)
    report = table("sd demo: classifiers (test subjects never seen in training)",
                   ["data set", "task", "balanced accuracy: test", "val", "chance", "test images",
                    "steps", "seconds"])
    failures = 0
    for name, out in processed.items():
        plugin = reg.dataset(name)
        if not plugin.main_task:
            continue
        c.print(f"[bold]{name}[/]: training a {plugin.main_task} classifier")
        try:
            r = train_demo_classifier(plugin, out, work, reg, project, c)
        except SdError as exc:
            failures += 1
            c.print(f"[red]{name}: {escape(str(exc))}[/]")
            continue
        report.add_row(name, r["task"], f"{r['test']:.3f}", f"{r['val']:.3f}", f"{1 / r['classes']:.3f}",
                       str(r["test_n"]), str(r["steps"]), f"{r['seconds']:.1f}")
    c.print(report)
    c.print(f"experiment files in {work / 'experiments'} (run one with `sd train FILE`), "
            f"runs in {work / 'runs'}")
    return failures


def diffusion_stage(reg, name: str, processed: Path, work: Path, seed: int) -> int:
    """Train the demo's diffusion model, generate a balanced set, and test the demo classifier of
    the same data set on it; returns 1 on failure."""
    from rich.markup import escape

    from sd_core.diffusion.demo import demo_diffusion
    from sd_core.errors import SdError
    from sd_core.training.saved import evaluate_run

    c = console()
    task = reg.dataset(name).main_task
    c.print(f"[bold]{name}[/]: training a diffusion model conditioned on {task}")
    try:
        r = demo_diffusion(processed, name, [task], work, seed=seed, console=c)
    except SdError as exc:
        c.print(f"[red]{name} diffusion: {escape(str(exc))}[/]")
        return 1
    rows = [(f"{name}: diffusion", f"{r['steps']} steps, final loss {r['final_loss']:.3f}, "
             f"{r['train_seconds']:.0f} s")]
    rows.append(("generated", f"{r['images']} images in {r['generated']}"))
    rows.append(("real vs generated", str(r["grid"])))
    classifier = work / "runs" / f"{name}-classifier"
    if (classifier / "state.json").is_file():
        try:
            ev = evaluate_run(classifier, reg, "train", [r["generated"]])
            m = ev["metrics"]
            rows.append((f"{name} classifier on generated images",
                         f"{task}: balanced accuracy {m.get(f'{task}/balanced_accuracy', float('nan')):.3f} "
                         f"(chance {1 / len(reg.task(name, task).classes):.3f}), AUROC "
                         f"{m.get(f'{task}/auroc', float('nan')):.3f}: do generated images carry their label?"))
        except SdError as exc:
            rows.append((f"{name} classifier on generated images", f"not evaluated: {exc}"))
    report = table("sd demo: conditional diffusion", ["", ""])
    for a, b in rows:
        report.add_row(a, escape(b))
    c.print(report)
    from sd_core.evaluate.demo import evaluate_demo

    return evaluate_demo(processed, r["generated"], work, seed, c)
