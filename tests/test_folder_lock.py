"""One writer per output or run folder (issue 31, item 5): real processes, real kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_sd
from layout_data import math_like
from test_train import experiment

from sd_core.errors import SdError
from sd_core.runs.lock import folder_lock

pytest.importorskip("fcntl")

HOLD = """
import sys, time
from sd_core.runs.lock import folder_lock
with folder_lock(sys.argv[1], shard=sys.argv[2]):
    print("held", flush=True)
    time.sleep(60)
"""


def holder(folder: Path, shard: str = "") -> subprocess.Popen:
    """Another process holding the folder's lock (until killed)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), shard], stdout=subprocess.PIPE, text=True,
                         cwd=ROOT)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    p = holder(tmp_path / "out")
    try:
        with pytest.raises(SdError, match=rf"out is in use by pid {p.pid} on .*since"):
            with folder_lock(tmp_path / "out"):
                pass
    finally:
        p.kill()
        p.wait()
    with folder_lock(tmp_path / "out"):  # killed (-9): its lock went with it
        assert (tmp_path / "out" / ".sd" / "lock").is_file()
    assert not (tmp_path / "out" / ".sd").exists()  # a finished holder leaves no lock file


def test_a_stale_lock_file_blocks_nobody(tmp_path):
    p = holder(tmp_path / "out")
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (tmp_path / "out" / ".sd" / "lock").read_text().startswith('{"host"')  # left behind
    with folder_lock(tmp_path / "out"):
        pass


def test_shards_run_side_by_side_but_each_once(tmp_path):
    out = tmp_path / "out"
    p = holder(out, "1-of-2")
    try:
        with folder_lock(out, shard="2-of-2"):  # another shard of the same job: fine
            pass
        with pytest.raises(SdError, match=f"in use by pid {p.pid}"):
            with folder_lock(out, shard="1-of-2"):  # the same shard twice
                pass
        with pytest.raises(SdError, match="in use by"):
            with folder_lock(out):  # a whole run beside a shard
                pass
    finally:
        p.kill()
        p.wait()


def test_two_sd_train_into_one_run_folder(tmp_path):
    """The second refuses at once; the first, killed, never claims to be finished."""
    data = tmp_path / "processed"
    math_like(data / "math")
    cfg = experiment(tmp_path, data, epochs=500)
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    first = subprocess.Popen([sys.executable, "-m", "sd_core", "train", str(cfg), "--out", str(run)], cwd=ROOT,
                             env={**env, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (run / ".sd" / "lock").is_file() and time.time() < deadline and first.poll() is None:
            time.sleep(0.1)
        t0 = time.time()
        res = run_sd("train", str(cfg), "--out", str(run))
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert f"is in use by pid {first.pid}" in res.stderr, res.stderr
        assert time.time() - t0 < 60
    finally:
        first.kill()
        first.wait()
    state = run / "state.json"
    assert not state.exists() or json.loads(state.read_text())["finished"] is False


def test_a_file_size_limit_is_one_line_naming_the_file(tmp_path):
    """ulimit -f during training: the file and the cause, exit 1, no traceback (item 6)."""
    import resource

    data = tmp_path / "processed"
    math_like(data / "math")
    cfg = experiment(tmp_path, data, epochs=1)
    env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    res = subprocess.run([sys.executable, "-m", "sd_core", "train", str(cfg), "--out", str(tmp_path / "run")],
                         cwd=ROOT, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192)), timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tmp_path / 'run'}") and "file too large" in last and "ulimit -f" in last


# -- a kill at any instant (issue 31, item 4) -------------------------------------------------------

def _weights(run: Path) -> bytes:
    state = json.loads((run / "state.json").read_text())
    return (run / "checkpoints" / state["best"][0][1] / "model.safetensors").read_bytes()


def _kill_and_finish(cfg: Path, run: Path, when: float | str, env: dict) -> None:
    """sd train killed (-9) after ``when`` seconds, or as soon as the file ``when`` appears in the
    run folder, then the user's one command to finish it."""
    p = subprocess.Popen([sys.executable, "-m", "sd_core", "train", str(cfg), "--out", str(run)], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if isinstance(when, str):
        deadline = time.time() + 120
        while not (run / when).exists() and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
    else:
        time.sleep(when)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # what the messages tell the user: --resume where a checkpoint was written, else run it again
    again = ["--resume"] if (run / "state.json").is_file() else []
    res = run_sd("train", str(cfg), "--out", str(run), *again, env=env)
    assert res.returncode == 0, (delay, again, res.stderr[-1500:])


def _kill_campaign(tmp_path: Path, delays: list[float | str]) -> int:
    data = tmp_path / "processed"
    math_like(data / "math")
    cfg = experiment(tmp_path, data, epochs=3, training='eval_strategy = "epoch"\nbest_k = 1')
    env = {k: v for k, v in os.environ.items() if k not in ("SD_LOAD_PLUGINS", "SD_CONFIG")}
    env["OMP_NUM_THREADS"] = "1"
    res = run_sd("train", str(cfg), "--out", str(tmp_path / "whole"), env=env)
    assert res.returncode == 0, res.stderr
    want = _weights(tmp_path / "whole")
    for i, delay in enumerate(delays):
        run = tmp_path / f"killed-{i}"
        _kill_and_finish(cfg, run, delay, env)
        assert _weights(run) == want, delay
        assert not (run / ".sd").exists()  # nothing left to repair by hand: no lock, no start log
    return len(delays)


def test_sd_train_killed_at_any_instant_finishes_byte_identical(tmp_path):
    """Killed before it wrote anything, as its start files appear (before its first checkpoint:
    such a folder used to need hand repair), as its first state appears, and at a random instant:
    one command finishes each with the uninterrupted run's weights."""
    assert _kill_campaign(tmp_path, ["config.toml", "state.json", 1.2]) == 3


@pytest.mark.slow
def test_sd_train_killed_at_many_instants(tmp_path):
    import random

    rng = random.Random(31)
    delays = sorted(round(rng.uniform(0.2, 4.0), 2) for _ in range(12))
    assert _kill_campaign(tmp_path, [*delays, "run.json", "config.toml", "state.json", "history.json"]) == 16
