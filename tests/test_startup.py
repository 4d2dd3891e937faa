"""`sd --help` and the listing commands must not import torch, mne or diffusers."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "mne", "diffusers", "accelerate", "torchmetrics", "scipy", "pandas")

PROBE = """
import sys
from sd_core.cli import main
try:
    main({args!r}, prog_name="sd", standalone_mode=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = [m for m in {heavy!r} if m in sys.modules]
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
print("CODE=" + str(code), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [
    ["--help"], ["plugins"], ["plugins", "--json"], ["plugins", "--requirements"], ["datasets"],
    ["tasks"], ["tasks", "--dataset", "seed"], ["backbones"], ["metrics"], ["config", "show"],
    ["preprocess", "--help"], ["demo", "--help"],
    ["diffusion", "--help"], ["diffusion", "train", "--help"], ["diffusion", "models"],
    ["diffusion", "models", "--json"], ["diffusion", "train-vae", "--help"], ["generate", "--help"],
    ["train", "--help"], ["evaluate-run", "--help"],
])
def test_cli_starts_light(args, tmp_path):
    res = subprocess.run([sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    lines = dict(line.split("=", 1) for line in res.stderr.splitlines() if "=" in line[:6])
    assert lines.get("CODE") in ("0", "None"), res.stderr
    assert lines.get("HEAVY") == "", f"`sd {' '.join(args)}` imported {lines.get('HEAVY')}"
