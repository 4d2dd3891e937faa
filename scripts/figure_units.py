"""Writes docs/images/default-vs-uv.png: one demo window, the default image beside the µV one.

    .venv/bin/python scripts/figure_units.py [OUT.png]

The window is the first of subject 0's rest recording in the EEGMAT demo data (sd-math's demo
writer, seed 0), made at the default settings, once in volts (the default, the original's) and
once with ``units = "uV"``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    from sd_math.demo import write_eegmat
    from sd_math.plugin import MathDataset

    from sd_core.config import defaults
    from sd_core.preprocess.params import run_parameters, spectrogram_plan
    from sd_core.preprocess.subject import read_resampled
    from sd_core.spectrogram import spectrogram_images

    plugin = MathDataset()
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        write_eegmat(Path(tmp), seed=0, n_subjects=1, rest_seconds=40.0, math_seconds=20.0)
        rec = plugin.find_subjects(Path(tmp), {"states": "rest"})[0].recordings[0]
        for units in ("V", "uV"):
            prep = {**defaults()["preprocess"], "units": units}
            params = run_parameters(plugin, prep, list(plugin.channels), {"states": "rest"}, None)
            data, _, _ = read_resampled(plugin, rec, params, {"states": "rest"})
            plan = spectrogram_plan(params, data.shape[0])
            images.append(spectrogram_images(data[None, :, : params["nsamps"]], plan)[0])
    R = images[0].shape[0]
    scale, pad, top = 2, 16, 40
    canvas = Image.new("L", (2 * R * scale + 3 * pad, R * scale + top + pad), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (img, title) in enumerate(zip(images, ('default (units = "V", the original\'s)',
                                                  'units = "uV"')), start=0):
        x = pad + i * (R * scale + pad)
        canvas.paste(Image.fromarray(img).resize((R * scale, R * scale), Image.NEAREST), (x, top))
        zero = float(np.mean(img[:, (R - plan.width) // 2 : (R + plan.width) // 2] == 0))
        draw.text((x, 8), f"{title}", fill=0)
        draw.text((x, 22), f"{zero:.0%} of strip pixels are 0", fill=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/images/default-vs-uv.png")
