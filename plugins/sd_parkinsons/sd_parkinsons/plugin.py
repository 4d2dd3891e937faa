"""Hooks of sd-parkinsons: the ds004584 data set and its tasks.

OpenNeuro ds004584 (resting-state EEG in Parkinson's disease, 100 PD + 49 controls), BIDS::

    <root>/dataset_description.json
    <root>/participants.tsv                      participant_id  GROUP (PD/Control)  AGE  GENDER (M/F)
    <root>/sub-001/eeg/sub-001_task-Rest_eeg.set  EEGLAB header (+ .fdt with the samples, where present)
    <root>/sub-001/eeg/sub-001_task-Rest_eeg.json      sidecar: SamplingFrequency (500), ...
    <root>/sub-001/eeg/sub-001_task-Rest_channels.tsv  name  type  units  status (good/bad)
    ...

Labels: ``health`` (``PD`` or ``H`` from GROUP), ``gender`` and ``age`` per subject. Column names of
``participants.tsv`` are matched case-insensitively (``group``/``sex``/``Age`` work too). Channels
are picked by name (63 EEG channels with 10-10 names); the image uses the 19 of the 10-20 system
and Oz. Sessions (``sub-XXX/ses-YY/eeg/``) are accepted; every recording of the task becomes a run
of windows.

BIDS metadata that is used:

- ``*_eeg.json`` ``SamplingFrequency`` is compared with the rate in the ``.set``; a disagreement
  refuses the recording with a message naming both (see :func:`reading.check_sampling_frequency`).
- ``*_channels.tsv`` ``status`` = ``bad``: what happens to a bad channel the image needs is the
  ``bad_channels`` option.

Options (``[datasets.parkinsons]`` in sd.toml):

``task`` (``"Rest"``)
    BIDS task label of the recordings to use (``"*"``: every ``*_eeg.set``).
``bad_channels`` (``"skip"``)
    ``"skip"``: a recording is skipped, with a one-line error that names the channels and the
    ``_channels.tsv``, when the image needs a channel marked bad there (bad channels the image does
    not use do not matter); ``"interpolate"``: bad channels are replaced by spherical-spline
    interpolation from the good ones (loads the whole recording); ``"keep"``: use them as they are.
``check_sidecar`` (true)
    Refuse a recording whose sidecar ``SamplingFrequency`` disagrees with the file; false trusts
    the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import ConfigError, DatasetError
from sd_core.specs import CLASSIFICATION, REGRESSION, OptionSpec, TaskSpec

NAME = "parkinsons"
BAD_POLICIES = ("skip", "interpolate", "keep")

log = logging.getLogger(__name__)


def _check_options(options: Mapping[str, Any]) -> None:
    policy = options.get("bad_channels", "skip")
    if policy not in BAD_POLICIES:
        raise ConfigError(f"[datasets.{NAME}] bad_channels = {policy!r} is not allowed; allowed: "
                          + ", ".join(BAD_POLICIES))
    task = options.get("task", "Rest")
    if not isinstance(task, str) or not task.strip():
        raise ConfigError(f"[datasets.{NAME}] task must be a BIDS task label such as \"Rest\" (or \"*\")")


class ParkinsonsDataset(DatasetPlugin):
    name = NAME
    title = "OpenNeuro ds004584: resting-state EEG, Parkinson's vs controls (BIDS, EEGLAB, 500 Hz)"
    #: The original project's 20 channels, in its order.
    channels = ("Fp1", "Fp2", "F3", "F4", "Fz", "F7", "F8", "C3", "C4", "Cz", "P3", "P4", "Pz", "O1", "O2",
                "T7", "T8", "TP7", "TP8", "TP10")
    hop_multiple = 4
    columns = ()
    main_task = "health"
    #: The data's licence, a Hugging Face licence id (sd meta build's dataset cards):
    #: OpenNeuro ds004584: CC0.
    license = "cc0-1.0"
    options = {
        "task": OptionSpec("Rest", "BIDS task label of the recordings to use (\"*\" = all)"),
        "bad_channels": OptionSpec("skip", "a channel marked bad in *_channels.tsv that the image needs: "
                                           "\"skip\" the recording, \"interpolate\" it, or \"keep\" it",
                                   choices=BAD_POLICIES),
        "check_sidecar": OptionSpec(True, "refuse a recording whose *_eeg.json SamplingFrequency "
                                          "disagrees with the .set"),
    }

    # -- discovery --------------------------------------------------------------------------

    def raw_found(self, root: Path) -> bool:
        from sd_parkinsons.bids import PARTICIPANTS

        return root.is_dir() and ((root / PARTICIPANTS).is_file() or any(root.glob("sub-*/eeg")))

    def find_subjects(self, root: Path, options: Mapping[str, Any]) -> list[Subject]:
        from sd_parkinsons.bids import PARTICIPANTS, find_eeg_files, read_participants

        _check_options(options)
        task = options.get("task", "Rest")
        table = root / PARTICIPANTS
        if not table.is_file():
            raise DatasetError(f"{PARTICIPANTS} not found in {root}; ds004584 ships it at the top of the "
                               "BIDS folder (it gives each subject's group, age and gender)")
        info = read_participants(table)
        files = find_eeg_files(root, task)
        unknown = sorted(set(files) - set(info))
        if unknown:
            log.warning("%s: recordings of %s have no row in %s and are left out", root,
                        ", ".join(unknown), PARTICIPANTS)
        subjects = []
        for sid, labels in info.items():
            found = files.get(sid)
            if found:
                recs = [Recording(f.id, f.path, {}, extra={"sidecar": f.sidecar, "channels_tsv": f.channels_tsv})
                        for f in found]
            else:  # listed but without a recording: the core reports the missing file
                label = "Rest" if task == "*" else task
                path = root / sid / "eeg" / f"{sid}_task-{label}_eeg.set"
                recs = [Recording(f"task-{label}", path, {}, extra={"sidecar": None, "channels_tsv": None})]
            subjects.append(Subject(sid, dict(labels), recs))
        return subjects

    # -- reading ----------------------------------------------------------------------------

    def read_raw(self, recording: Recording, options: Mapping[str, Any]):
        from sd_parkinsons.reading import open_recording

        return open_recording(recording.path, recording.extra.get("sidecar"),
                              recording.extra.get("channels_tsv"),
                              check_sidecar=bool(options.get("check_sidecar", True)),
                              bad_policy=options.get("bad_channels", "skip"))

    # -- demo -------------------------------------------------------------------------------

    def write_demo(self, root: Path, seed: int = 0, **kw: Any) -> None:
        from sd_parkinsons.demo import write_ds004584

        write_ds004584(root, seed, **kw)

    def demo_size(self, size: str, scale: float = 1.0) -> tuple[dict[str, Any], int]:
        """Full size: ds004584's 149 participants (times ``scale``), 180 s of rest each (an
        assumption of the order of the real recordings; sd does not know their exact length);
        63 float32 channels at 500 Hz."""
        if size != "full":
            return super().demo_size(size, scale)
        n = max(4, round(149 * scale))
        return {"n_subjects": n, "seconds": 180.0}, n * 180 * 500 * 63 * 4


@hookimpl
def sd_datasets():
    return [ParkinsonsDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("health", NAME, CLASSIFICATION, ("H", "PD"), description="H control, PD Parkinson's"),
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("parkinsons_condition", NAME, CLASSIFICATION, ("H_F", "H_M", "PD_F", "PD_M"),
                 ("health", "gender"), "health × gender"),
    ]
