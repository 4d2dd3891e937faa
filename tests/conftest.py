"""Shared fixtures: running the CLI in a subprocess, fake plugin distributions, real data paths."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def torch_one_thread():
    """One intra-op torch thread for a module of tiny nets (``pytestmark =
    pytest.mark.usefixtures("torch_one_thread")``): about as fast, and far more robust when other
    processes keep the CPUs busy (oversubscribed torch threads slow down by an order of magnitude)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_until(train, experiment, step: int) -> None:
    """Start ``train(experiment)`` (a diffusion run) and stop it, as a killed run would stop,
    once optimizer step ``step`` is done."""
    from sd_core.diffusion.train import StopTraining

    def interrupt(done, loss):
        if done == step:
            raise StopTraining

    with pytest.raises(StopTraining):
        train(experiment, on_step=interrupt)


@pytest.fixture(scope="session", autouse=True)
def sd_cache_dir(tmp_path_factory) -> Path:
    """sd's cache folder (``SD_CACHE_DIR``) for the session and the processes it starts: the
    tests never write into the user's ``~/.cache``."""
    path = tmp_path_factory.mktemp("sd-cache")
    old = os.environ.get("SD_CACHE_DIR")
    os.environ["SD_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SD_CACHE_DIR", None)
    else:
        os.environ["SD_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not REAL.is_dir():
        pytest.fail(f"real test recordings not found at {REAL} (../shared/data/real)")
    return REAL


def run_sd(*args: str, env: dict | None = None, cwd: Path | None = None,
           extra_path: list[Path] = (), timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python -m sd_core ARGS`` in a fresh process and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    full_env["COLUMNS"] = "200"
    if extra_path:
        full_env["PYTHONPATH"] = os.pathsep.join([*map(str, extra_path), full_env.get("PYTHONPATH", "")])
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sd_core", *args], capture_output=True, text=True,
        env=full_env, cwd=cwd or ROOT, timeout=timeout,
    )


def make_fake_dist(site: Path, dist: str, module: str, code: str, version: str = "0.0.1") -> None:
    """A minimal installed distribution on a path entry: a module plus a dist-info folder whose
    ``entry_points.txt`` registers the module in the ``sd`` group — what pip would leave behind."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[sd]\n{module} = {module}\n")


def small_prep(fs: float = 125.0, nsamps: int = 500, resolution: int = 128, **kw) -> dict:
    """Preprocessing parameters for fast tests: 4 s windows every 2 s, 128-pixel images."""
    from sd_core.config import defaults

    p = defaults()["preprocess"]
    p.update(fs=fs, nsamps=nsamps, overlap=0.5, resolution=resolution)
    p.update(kw)
    return p


def read_rows(path: Path) -> list[dict]:
    """The rows of a metadata CSV."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
