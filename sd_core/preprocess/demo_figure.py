"""The raw-data figure of ``sd demo``'s report: per data set and class, a few raw traces with the
artefacts the writer put there marked, and every subject's Welch PSD overlaid, so that a reader
sees how far subjects spread compared with the classes.

Recordings are read through the plugin (``find_subjects``, ``read_raw``) like preprocessing reads
them; the artefact times come from the writer's ground truth (``sd-demo-truth.json``), keyed by
recording id. A data set without one still gets its traces and PSDs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from sd_core.errors import SdError
from sd_core.signals.channels import match_channels

TRACE_SECONDS = 10.0
#: channels left out of the figure: not scalp EEG (ECG, EOG, reference differences, dummies)
NOT_EEG = re.compile(r"ECG|EKG|EOG|HEO|VEO|A2-A1|VNS|^-$", re.IGNORECASE)
COLOURS = {"blink": "tab:blue", "eye movement": "tab:cyan", "muscle": "tab:red", "pop": "tab:purple",
           "seizure": "tab:orange", "chewing": "tab:brown", "movement": "tab:olive"}


def _truth(raw_root: Path) -> dict:
    path = raw_root / "sd-demo-truth.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _class_of(task: Any, subject: Any, recording: Any) -> str:
    labels = {**subject.labels, **recording.labels}
    try:
        return f"{task.name}={task.target_value(labels)}" if task is not None else "all"
    except KeyError:
        return "all"


def _events(truth: dict, recording: Any) -> list[dict]:
    """The recording's artefacts and events from the ground truth (found by recording id or file
    name), in seconds from the start of the part the recording reads."""
    recordings = truth.get("recordings", {})
    stem = Path(recording.path).name.split(".")[0]
    rec = next((recordings[k] for k in (recording.id, stem, stem.removesuffix("_eeg")) if k in recordings), {})
    events = list(rec.get("artefacts", [])) + list(rec.get("events", [])) + list(rec.get("lookalikes", []))
    for s in rec.get("seizures", []):
        start, stop = (s["start"], s["stop"]) if isinstance(s, dict) else s
        events.append({"kind": "seizure", "start": start, "stop": stop})
    offset = recording.start or 0.0
    return [{**e, "start": e["start"] - offset, "stop": e["stop"] - offset} for e in events
            if e["stop"] > offset and (recording.stop is None or e["start"] < recording.stop)]


def _load(plugin: Any, recording: Any, options: dict, channels: list[str]) -> tuple[np.ndarray, float, list[str]]:
    raw = plugin.read_raw(recording, options)
    picks = match_channels(channels, [plugin.channel_name(n) for n in raw.ch_names], str(recording.path))
    fs = float(raw.info["sfreq"])
    start = int(round((recording.start or 0.0) * fs))
    stop = raw.n_times if recording.stop is None else int(round(recording.stop * fs))
    picks = [i for i in picks if not NOT_EEG.search(raw.ch_names[i])] or picks
    data = raw.get_data(picks=picks, start=start, stop=stop) * 1e6
    return data, fs, [raw.ch_names[i] for i in picks]


def gather(plugin: Any, raw_root: Path, registry: Any, max_subjects: int = 12) -> dict[str, list[dict]]:
    """Per class: one recording of each subject (up to ``max_subjects``), its samples (µV) and
    its artefacts."""
    options = {k: o.default for k, o in dict(plugin.options).items()}
    task = registry.tasks.get((plugin.name, plugin.main_task)) if plugin.main_task else None
    truth = _truth(raw_root)
    channels = list(plugin.channels)
    out: dict[str, list[dict]] = {}
    for subject in plugin.find_subjects(raw_root, options)[:max_subjects]:
        seen: set[str] = set()
        events = {rec.id: _events(truth, rec) for rec in subject.recordings}
        # a recording with a seizure first: the figure shows one where there is one
        ordered = sorted(subject.recordings, key=lambda r: not any(e["kind"] == "seizure" for e in events[r.id]))
        for rec in ordered:
            cls = _class_of(task, subject, rec)
            if cls in seen:
                continue
            seen.add(cls)
            try:
                data, fs, names = _load(plugin, rec, options, channels)
            except (SdError, OSError, ValueError, RuntimeError):  # left out of the figure
                continue
            out.setdefault(cls, []).append({"subject": subject.id, "recording": rec.id, "data": data,
                                            "fs": fs, "channels": names, "events": events[rec.id]})
    return out


def _trace_panel(ax, item: dict, n_channels: int = 4) -> None:
    fs, data = item["fs"], item["data"]
    idx = np.linspace(0, len(data) - 1, n_channels).round().astype(int)
    seizures = [e["start"] for e in item["events"] if e["kind"] == "seizure"]
    t0 = max(0.0, min(seizures) - 3.0) if seizures else 0.0
    a = int(t0 * fs)
    n = min(data.shape[1] - a, int(TRACE_SECONDS * fs))
    t = t0 + np.arange(n) / fs
    for k, i in enumerate(idx):
        trace = data[i, a:a + n] - np.median(data[i, a:a + n])
        ax.plot(t, trace - 150 * k, lw=0.5, color="black")
        ax.text(t0 - 0.2, -150 * k, item["channels"][i], ha="right", va="center", fontsize=6)
    for e in item["events"]:
        if e["start"] < t0 + TRACE_SECONDS and e["stop"] > t0:
            ax.axvspan(max(e["start"], t0), min(e["stop"], t0 + TRACE_SECONDS), color=COLOURS.get(e["kind"], "grey"),
                       alpha=0.3, lw=0)
    ax.set_yticks([])
    ax.set_xlim(t0, t0 + TRACE_SECONDS)
    ax.set_title(f"{item['recording']} ({t0:.0f}–{t0 + TRACE_SECONDS:.0f} s, µV, 150 µV apart)", fontsize=7)


def _psd_panel(ax, items: list[dict], title: str) -> None:
    from scipy.signal import welch

    for item in items:
        f, p = welch(item["data"], fs=item["fs"], nperseg=int(2 * item["fs"]))
        keep = (f >= 1) & (f <= 45)
        ax.semilogy(f[keep], np.exp(np.log(p[:, keep] + 1e-12).mean(0)), lw=0.8, alpha=0.8)
    ax.set_title(f"{title}: Welch PSD per subject (geometric mean over channels)", fontsize=7)
    ax.set_xlabel("Hz", fontsize=7)
    ax.set_ylabel("µV²/Hz", fontsize=7)
    ax.tick_params(labelsize=6)


def raw_figure(plugin: Any, raw_root: Path, path: Path, registry: Any) -> Path | None:
    """Write the figure (PNG) for one data set; None when no recording could be read."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    classes = gather(plugin, raw_root, registry)
    if not classes:
        return None
    fig, axes = plt.subplots(len(classes), 3, figsize=(13, 2.6 * len(classes)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1.1]})
    for row, (cls, items) in zip(axes, sorted(classes.items())):
        for ax, item in zip(row[:2], items[:2]):
            _trace_panel(ax, item)
        for ax in row[len(items[:2]):2]:
            ax.axis("off")
        _psd_panel(row[2], items, cls)
    handles = [Patch(color=c, alpha=0.3, label=k) for k, c in COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    fig.suptitle(f"{plugin.name}: raw demo recordings by class (artefacts marked), and the subjects' spectra",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
