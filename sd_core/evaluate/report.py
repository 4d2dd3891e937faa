"""The outputs of ``sd evaluate``: ``evaluation.json``, a self-contained ``report.html`` (tables,
PNG plots embedded as base64) and rich tables for the terminal."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sd_core.evaluate.run import HEADLINE, clean


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) >= 1000 or (v != 0 and abs(v) < 1e-3) else f"{v:.{digits}f}"
    return str(v)


def write_outputs(out: Path, evaluation: dict[str, Any]) -> dict[str, Path]:
    """Write ``evaluation.json`` and ``report.html`` into ``out``."""
    from sd_core.runs.owned import Manifest

    out.mkdir(parents=True, exist_ok=True)
    result = clean(evaluation["result"])
    owned = Manifest(out)  # a file of the same name that sd did not write is refused by name
    for name in ("evaluation.json", "report.html"):
        owned.check(name)
    owned.write_text("evaluation.json", json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    owned.write_text("report.html", report_html(result, evaluation["figures"]))
    return {"json": out / "evaluation.json", "html": out / "report.html"}


# -- terminal -------------------------------------------------------------------------------

def headline_rows(result: dict[str, Any]) -> list[list[str]]:
    """Per feature space: each metric as "generated (real vs real)"."""
    rows = []
    for space, entry in result["features"].items():
        if "pooled" not in entry:
            rows.append([space, *(["skipped"] + ["-"] * (len(HEADLINE) - 1))])
            continue
        g, f = entry["pooled"]["generated"], entry["pooled"]["real_vs_real"]
        cells = []
        for key in HEADLINE:
            extra = f" ±{_f(g.get('kid_se'), 2)}" if key == "kid" else ""
            cells.append(f"{_f(g.get(key))}{extra} ({_f(f.get(key))})")
        rows.append([space, *cells])
    return rows


def terminal_tables(result: dict[str, Any]) -> list[Any]:
    from sd_core.runs.console import table

    out = []
    spaces = [s for s, e in result["features"].items() if "pooled" in e]
    cols = ["metric"]
    for s in spaces:
        cols += [f"{s}", f"{s}: real vs real"]
    t = table(f"sd evaluate: {Path(result['generated']).name} against {result['dataset']} "
              f"{result['real_split']} ({result['n']['generated']} vs {result['n']['real']} images)", cols)
    for key in HEADLINE:
        cells = [key]
        for s in spaces:
            g = result["features"][s]["pooled"]["generated"]
            f = result["features"][s]["pooled"]["real_vs_real"]
            se = (lambda d: f" ±{_f(d.get('kid_se'), 2)}") if key == "kid" else (lambda d: "")
            cells += [f"{_f(g.get(key))}{se(g)}", f"{_f(f.get(key))}{se(f)}"]
        t.add_row(*cells)
    out.append(t)
    for s, e in result["features"].items():
        if "pooled" not in e:
            out.append(f"feature space {s}: skipped ({e['skipped']})")
    other = table("conditional accuracy, utility, memorisation", ["", ""])
    for task, c in result["conditional_accuracy"].items():
        if "balanced_accuracy" in c:
            recall = ", ".join(f"{k} {_f(v)}" for k, v in c["per_class_recall"].items())
            other.add_row(f"real classifier on generated: {task}",
                          f"balanced accuracy {_f(c['balanced_accuracy'])} (chance {_f(c['chance'])}); "
                          f"recall {recall}")
    for key, label in (("tstr", "TSTR (train synthetic, test real)"), ("trts", "TRTS (train real, test synthetic)"),
                       ("augmentation", "real + synthetic, test real"), ("trtr", "real only, test real")):
        entry = result.get(key, {})
        if "skipped" in entry:
            other.add_row(label, f"skipped ({entry['skipped']})")
            continue
        for task, s in entry["balanced_accuracy"].items():
            other.add_row(f"{label}: {task}", f"balanced accuracy {_f(s['mean'])} ± {_f(s['std'])} "
                          f"({len(s['per_seed'])} seeds)")
    m = result["memorisation"]
    other.add_row("memorisation", f"{m['copies']} of {m['n_generated']} generated images closer to a training "
                  f"image than 99 % of real held-out images ({_f(100 * (m['copy_share'] or 0), 2)} %)"
                  + ("  [bold red]FLAGGED[/]" if m["flagged"] else ""))
    out.append(other)
    bp = result.get("band_power", {})
    if "pooled" in bp:
        bands = list(bp["bands"])
        t = table("band power: generated − real, grey levels [95 % interval]", ["class", *bands])
        t.add_row("all", *[_diff(bp["pooled"][b]) for b in bands])
        for task, classes in bp["per_class"].items():
            for c, s in classes.items():
                t.add_row(f"{task}={c}", *[_diff(s[b]) for b in bands])
        out.append(t)
    return out


def _diff(s: dict) -> str:
    lo, hi = s["ci95"]
    return f"{_f(s['difference'], 1)} [{_f(lo, 1)}, {_f(hi, 1)}]"


# -- HTML -----------------------------------------------------------------------------------

CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.4em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.floor{color:#777}.flag{color:#b00;font-weight:bold}img{max-width:100%}code{background:#f4f4f4}"""


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(x))}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{x}</td>" for x in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _pair(g: dict, f: dict, key: str) -> str:
    extra = f" ± {_f(g.get('kid_se'), 2)}" if key == "kid" else ""
    return f"{_f(g.get(key))}{extra} <span class=floor>({_f(f.get(key))})</span>"


def grid_png(grid) -> bytes:
    """Per class: a row of real images beside a row of generated ones."""
    from PIL import Image, ImageDraw

    tile, pad, label = 64, 2, 150
    cols = max((max(len(r), len(g)) for _, r, g in grid), default=1)
    sheet = Image.new("L", (label + 2 * (cols * (tile + pad)) + 12, max(1, len(grid)) * (tile + pad) + 16), 30)
    draw = ImageDraw.Draw(sheet)
    draw.text((label, 2), "real", fill=235)
    draw.text((label + cols * (tile + pad) + 12, 2), "generated", fill=235)
    for r, (name, real, gen) in enumerate(grid):
        y = 16 + r * (tile + pad)
        draw.text((4, y + 4), name[:24], fill=235)
        for part, x0 in ((real, label), (gen, label + cols * (tile + pad) + 12)):
            for c, img in enumerate(part):
                tile_img = Image.fromarray(np.asarray(img, dtype=np.uint8)).resize((tile, tile), Image.NEAREST)
                sheet.paste(tile_img, (x0 + c * (tile + pad), y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def report_html(result: dict[str, Any], figures: dict[str, Any]) -> str:
    from sd_core.evaluate.memorisation import histogram_plot

    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>sd evaluate: {e(result['dataset'])}"
             f"</title><style>{CSS}</style></head><body>",
             f"<h1>Is the synthetic data any good?</h1><p>Generated <code>{e(result['generated'])}</code> "
             f"({result['n']['generated']} images) against real <code>{e(result['real'])}</code>, split "
             f"<code>{e(result['real_split'])}</code> ({result['n']['real']} images), at "
             f"{result['image_size']}×{result['image_size']}; tasks {e(', '.join(result['tasks']))}; seed "
             f"{result['seed']}. Grey numbers in brackets: the same metric for real <code>"
             f"{e(result['floor_split'])}</code> images against the real reference (the floor).</p>",
             "<h2>Real beside generated</h2>"]
    if figures.get("grid"):
        parts.append(_img(grid_png(figures["grid"]), "real and generated images per class"))
    parts.append("<h2>Fidelity and diversity</h2>")
    parts.append(_table(["features", *HEADLINE], headline_rows(result)))
    for space, entry in result["features"].items():
        if "pooled" not in entry:
            parts.append(f"<p><b>{e(space)}</b>: skipped ({e(entry['skipped'])})</p>")
            continue
        parts.append(f"<h3>{e(space)} <small>({e(entry['description'])}; {entry['dim']} dimensions)</small></h3>")
        rows = []
        for task, classes in entry["per_class"].items():
            for c, s in classes.items():
                rows.append([e(f"{task}={c}"), f"{s['n_real']}/{s['n_generated']}",
                             *[_pair(s["generated"], s["real_vs_real"], k) for k in HEADLINE]])
        parts.append(_table(["class", "n real/gen", *HEADLINE], rows))
    parts.append("<h2>Conditional accuracy</h2><p>The real-trained classifier on the generated images, "
                 "against the labels they were generated for.</p>")
    rows = []
    for task, c in result["conditional_accuracy"].items():
        if "balanced_accuracy" not in c:
            rows.append([e(task), e(c.get("skipped", "")), "", "", ""])
            continue
        rows.append([e(task), _f(c["balanced_accuracy"]), _f(c["accuracy"]), _f(c["chance"]),
                     e(", ".join(f"{k}: {_f(v)}" for k, v in c["per_class_recall"].items()))])
    parts.append(_table(["task", "balanced accuracy", "accuracy", "chance", "recall per class"], rows))
    bp = result.get("band_power", {})
    parts.append("<h2>Spectral statistics</h2>")
    if "pooled" in bp:
        bands = list(bp["bands"])
        rows = []
        for label, s in [("all", bp["pooled"])] + [(f"{t}={c}", s) for t, cl in bp["per_class"].items()
                                                   for c, s in cl.items()]:
            rows.append([e(label), *[f"{_f(s[b]['real'], 1)} / {_f(s[b]['generated'], 1)}<br>{_diff(s[b])}"
                                     for b in bands]])
        parts.append(f"<p>Mean band power ({e(bp['unit'])}): real / generated, and generated − real "
                     "with its 95 % bootstrap interval.</p>")
        parts.append(_table(["class", *[f"{b} ({lo:g}-{hi:g} Hz)" for b, (lo, hi) in bp["bands"].items()]], rows))
        if figures.get("spectrum"):
            parts.append(_img(figures["spectrum"], "mean log-spectrum per class"))
    else:
        parts.append(f"<p>skipped ({e(bp.get('skipped', ''))})</p>")
    parts.append("<h2>Utility</h2>")
    rows = []
    for key, label in (("trtr", "train real, test real"), ("tstr", "train synthetic, test real (TSTR)"),
                       ("trts", "train real, test synthetic (TRTS)"),
                       ("augmentation", "train real + synthetic, test real")):
        entry = result.get(key, {})
        if "skipped" in entry:
            rows.append([e(label), "", f"skipped ({e(entry['skipped'])})"])
            continue
        for task, s in entry["balanced_accuracy"].items():
            rows.append([e(label), e(task), f"{_f(s['mean'])} ± {_f(s['std'])} "
                         f"({', '.join(_f(v) for v in s['per_seed'])})"])
    parts.append(_table(["", "task", "balanced accuracy, mean ± std (per seed)"], rows))
    m = result["memorisation"]
    flag = "<span class=flag>likely copies: flagged</span>" if m["flagged"] else "not flagged"
    parts.append(f"<h2>Memorisation</h2><p>{m['copies']} of {m['n_generated']} generated images "
                 f"({_f(100 * (m['copy_share'] or 0), 2)} %) are closer to a real training image than "
                 f"the 1st percentile of real held-out images ({_f(m['threshold_p1_real'], 4)}): {flag}.</p>")
    if figures.get("memorisation"):
        d_gen, d_real = figures["memorisation"]
        parts.append(_img(histogram_plot(d_gen, d_real, m["threshold_p1_real"] or float("nan")),
                          "distances to the nearest training image"))
    parts.append(_table(["generated", "nearest real training image", "distance"],
                        [[e(c["generated"]), e(c["real_train"]), _f(c["distance"], 4)] for c in m["closest"]]))
    parts.append("</body></html>\n")
    return "\n".join(parts)
