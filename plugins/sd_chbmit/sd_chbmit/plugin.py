"""Hooks of sd-chbmit: the CHB-MIT data set and its tasks.

PhysioNet "CHB-MIT Scalp EEG Database" 1.0.0, as downloaded::

    <root>/SUBJECT-INFO                  Case  Gender  Age (years), one line per case
    <root>/chb01/chb01-summary.txt       montage and seizure times of every recording
    <root>/chb01/chb01_03.edf            EDF, 256 Hz, bipolar derivations "FP1-F7", ...
    <root>/chb01/chb01_03.edf.seizures   WFDB annotations: seizure onset/offset pairs
    <root>/chb17/chb17a_03.edf           (some cases have lettered recordings)

Seizure times come from the summary file and from the ``.seizures`` sidecars. Where both describe a
recording they must agree to within 1 s (then the sidecar's sample-exact times are used); where they
disagree the recording is skipped with an error that gives both, because some of its windows would
carry a wrong label whichever were picked — set ``seizure_source`` to choose one source.

Options (``[datasets.chbmit]`` in sd.toml):

``seizure_overlap`` (0.5)
    A window is a seizure window (``seizure = 1``) when seizures cover at least this fraction of it;
    windows wholly inside a long seizure are seizure windows.
``max_nonseizure_ratio`` (0 = no cap)
    Keep at most this many non-seizure windows per seizure window of a recording, chosen evenly
    spaced over the recording (deterministic). Off by default so that nothing is thrown away
    silently; seizures fill well under 1 % of CHB-MIT, so for the real data set 5–20 is sensible.
``seizure_free_windows`` (10)
    With a cap, how many (evenly spaced) windows a recording without seizures keeps; 0 drops them.
``seizure_source`` ("both")
    "both": every source present, which must agree; "summary": the summary files only;
    "sidecars": the ``.seizures`` files only (no sidecar = no seizure).
``join_chb21`` (true)
    chb21 was recorded from the same girl as chb01, 1.5 years later: treat its recordings as more
    recordings of subject chb01 (with chb21's age), so that the two never land in different splits.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from sd_core import hookimpl
from sd_core.dataset import DatasetPlugin, Recording, Subject
from sd_core.errors import ConfigError, DatasetError
from sd_core.specs import CLASSIFICATION, REGRESSION, OptionSpec, TaskSpec

NAME = "chbmit"
#: The original project's 23 derivations, in its order. ``T8-P8`` is there twice: CHB-MIT
#: recordings hold two different signals of that name, and the n-th mention picks the n-th.
DERIVATIONS = (
    "FP1-F7", "FP1-F3", "FP2-F4", "FP2-F8", "F3-C3", "FZ-CZ", "F7-T7", "C3-P3", "C4-P4", "CZ-PZ",
    "P3-O1", "P4-O2", "T7-FT9", "T7-P7", "T8-P8", "T8-P8", "P8-O2", "P7-O1", "F4-C4", "F8-T8",
    "P7-T7", "FT9-FT10", "FT10-T8",
)
INFO_FILE = "SUBJECT-INFO"
SOURCES = ("both", "summary", "sidecars")
AGREE_SECONDS = 1.0  # summary and sidecar times must agree to within this
_CASE = re.compile(r"^chb\d+$", re.IGNORECASE)
_DUMMY = re.compile(r"^[\s.\-]*$")  # "-" (and empty) channels that hold no signal
_MNE_DUPLICATE = re.compile(r"^(.*-.*)-\d+$")  # MNE's "T8-P8-0", "T8-P8-1" for two "T8-P8"

log = logging.getLogger(__name__)


def _check_options(options: Mapping[str, Any]) -> None:
    where = f"[datasets.{NAME}]"
    frac = options.get("seizure_overlap", 0.5)
    if not (isinstance(frac, (int, float)) and 0 < frac <= 1):
        raise ConfigError(f"{where} seizure_overlap must be a fraction in (0, 1], got {frac!r}")
    ratio = options.get("max_nonseizure_ratio", 0.0)
    if not (isinstance(ratio, (int, float)) and ratio >= 0):
        raise ConfigError(f"{where} max_nonseizure_ratio must be ≥ 0 (0 = no cap), got {ratio!r}")
    free = options.get("seizure_free_windows", 10)
    if not (isinstance(free, int) and free >= 0):
        raise ConfigError(f"{where} seizure_free_windows must be a whole number ≥ 0, got {free!r}")
    source = options.get("seizure_source", "both")
    if source not in SOURCES:
        raise ConfigError(f"{where} seizure_source = {source!r} is not allowed; allowed: {', '.join(SOURCES)}")


def _fmt(spans: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:g}–{b:g} s" for a, b in spans) or "none"


def agree(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]], tol: float = AGREE_SECONDS) -> bool:
    """Same number of seizures, each onset and offset within ``tol`` seconds."""
    if len(a) != len(b):
        return False
    return all(abs(x0 - y0) <= tol and abs(x1 - y1) <= tol for (x0, x1), (y0, y1) in zip(sorted(a), sorted(b)))


def recording_seizures(name: str, entry, sidecar: Path | None, source: str,
                       summary_name: str | None) -> tuple[list[tuple[float, float]], list[str]]:
    """(seizure spans in seconds, problems) of one recording from its summary entry and sidecar."""
    from sd_chbmit.annotations import AnnotationError, read_seizure_file

    problems: list[str] = []
    side = None
    if sidecar is not None and source in ("both", "sidecars"):
        try:
            side = read_seizure_file(sidecar)
        except (AnnotationError, OSError) as exc:
            problems.append(f"{sidecar.name}: unreadable seizure annotations ({exc})")
    summ = None
    if entry is not None and source in ("both", "summary"):
        problems += entry.problems
        summ = list(entry.seizures)
    if source == "summary" and entry is None:
        problems.append(f"{name} is not listed in {summary_name or 'a summary file'} "
                        "(seizure_source = \"summary\")")
    if problems:
        return [], problems
    if summ is not None and side is not None:
        if not agree(summ, side):
            problems.append(
                f"seizure times disagree: {summary_name} says {_fmt(summ)}, {sidecar.name} says "
                f"{_fmt(side)}; set seizure_source = \"summary\" or \"sidecars\" to use one")
            return [], problems
        return side, []
    return (side if side is not None else summ or []), []


def check_seizures_inside(recording: Recording, n_times: int, fs: float) -> None:
    """Raise DatasetError if a seizure starts after the end of its recording or runs past it (by
    more than a sample): the times or the file are wrong, and the windows would be labelled as if
    the seizure were not there."""
    length = n_times / fs
    for a, b in recording.extra.get("seizures", ()):
        if a >= length or b > length + 1 / fs:
            what = "starts after" if a >= length else "runs past"
            source = recording.extra.get("seizures_from") or "its seizure times"
            raise DatasetError(
                f"{recording.path.name}: the seizure at {a:g}–{b:g} s ({source}) {what} the end of the "
                f"recording ({length:g} s); the file is truncated or the seizure times do not belong to it")


class ChbmitDataset(DatasetPlugin):
    name = NAME
    title = "CHB-MIT: scalp EEG of children with seizures, 24 cases (EDF, 256 Hz, bipolar)"
    channels = DERIVATIONS
    hop_multiple = 8
    columns = ("seizure",)
    main_task = "seizure"
    #: The data's licence, a Hugging Face licence id (sd meta build's dataset cards):
    #: PhysioNet CHB-MIT: Open Data Commons Attribution 1.0.
    license = "odc-by"
    options = {
        "seizure_overlap": OptionSpec(0.5, "fraction of a window seizures must cover for seizure = 1"),
        "max_nonseizure_ratio": OptionSpec(0.0, "keep at most this many non-seizure windows per seizure "
                                                "window of a recording, evenly spaced (0 = keep all)"),
        "seizure_free_windows": OptionSpec(10, "with a cap: windows kept from a recording without "
                                               "seizures (evenly spaced; 0 = none)"),
        "seizure_source": OptionSpec("both", "seizure times from \"both\" (must agree), \"summary\" "
                                             "or \"sidecars\"", choices=SOURCES),
        "join_chb21": OptionSpec(True, "treat chb21 (chb01 1.5 years later) as recordings of subject chb01"),
    }

    # -- discovery --------------------------------------------------------------------------

    def raw_found(self, root: Path) -> bool:
        return root.is_dir() and any(_CASE.match(p.name) and p.is_dir() for p in root.iterdir())

    def find_subjects(self, root: Path, options: Mapping[str, Any]) -> list[Subject]:
        from sd_chbmit.summary import parse_subject_info, parse_summary

        _check_options(options)
        source = options.get("seizure_source", "both")
        info_path = root / INFO_FILE
        if not info_path.is_file():
            raise DatasetError(f"{INFO_FILE} not found in {root}; CHB-MIT ships it at the top of the "
                               "data set (it gives each case's gender and age)")
        info = parse_subject_info(info_path.read_text(encoding="latin-1"), info_path.name)
        cases = sorted(p for p in root.iterdir() if p.is_dir() and _CASE.match(p.name))
        if not cases:
            raise DatasetError(f"no case folders (chb01, chb02, ...) found in {root}")

        subjects: dict[str, Subject] = {}
        for case_dir in cases:
            case = case_dir.name.lower()
            summary_path = case_dir / f"{case_dir.name}-summary.txt"
            summary = None
            if summary_path.is_file():
                summary = parse_summary(summary_path.read_text(encoding="latin-1"), summary_path.name)
            on_disk = {p.name: p for p in case_dir.iterdir() if p.suffix.lower() == ".edf" and p.is_file()}
            listed = dict(summary.files) if summary else {}
            recs = []
            for fname in sorted(set(on_disk) | set(listed)):
                path = on_disk.get(fname, case_dir / fname)
                sidecar = case_dir / f"{fname}.seizures"
                seizures, problems = recording_seizures(
                    fname, listed.get(fname), sidecar if sidecar.is_file() else None, source,
                    summary_path.name if summary else None)
                if fname not in on_disk:
                    problems = [f"{fname} is listed in {summary_path.name} but missing from {case_dir}",
                                *problems]
                side = sidecar.is_file() and source in ("both", "sidecars")
                recs.append(Recording(Path(fname).stem, path, {}, extra={
                    "seizures": tuple(seizures), "problems": tuple(problems),
                    "seizures_from": sidecar.name if side else summary_path.name}))
            gender, age = info.get(case, (None, None))
            if case not in info:
                log.warning("%s: case %s is not in %s; its gender and age are left empty", root, case, INFO_FILE)
            subjects[case] = Subject(case, {"gender": gender, "age": age}, recs)

        if options.get("join_chb21", True) and "chb21" in subjects and "chb01" in subjects:
            later = subjects.pop("chb21")
            first = subjects["chb01"]
            moved = [Recording(r.id, r.path, {**r.labels, "age": later.labels.get("age")}, r.start, r.stop,
                               r.extra) for r in later.recordings]
            subjects["chb01"] = Subject("chb01", first.labels, [*first.recordings, *moved])
        return list(subjects.values())

    # -- reading ----------------------------------------------------------------------------

    def read_raw(self, recording: Recording, options: Mapping[str, Any]):
        """Open the EDF with its derivations under their own names.

        Dummy channels (``-``) are dropped.  Two different signals of one name (MNE makes
        ``T8-P8-0``, ``T8-P8-1`` of two ``T8-P8``) are both kept under MNE's names, which
        :meth:`channel_name` maps back: listing ``T8-P8`` twice picks the first, then the second.
        """
        import mne

        from sd_core.signals.edf import check_edf, signal_labels

        problems = list(recording.extra.get("problems", ()))
        if problems:
            more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise DatasetError(problems[0] + more)
        header = check_edf(recording.path)
        raw = mne.io.read_raw_edf(recording.path, preload=False, verbose="error")
        check_seizures_inside(recording, raw.n_times, float(raw.info["sfreq"]))
        labels = signal_labels(header)
        if len(labels) != len(raw.ch_names):  # unexpected: leave MNE's names to channel_name
            return raw
        from collections import Counter

        count = Counter(labels)
        drop, rename = [], {}
        for label, name in zip(labels, raw.ch_names):
            if _DUMMY.match(label):
                drop.append(name)
            elif name != label and count[label] == 1:
                rename[name] = label
        if drop and len(drop) < len(raw.ch_names):
            raw.drop_channels(drop)
        if rename and not set(rename.values()) & (set(raw.ch_names) - set(rename)):
            raw.rename_channels(rename)
        return raw

    def channel_name(self, raw_name: str) -> str:
        from sd_core.signals.channels import clean_channel_name

        name = clean_channel_name(raw_name)
        m = _MNE_DUPLICATE.match(name)
        return m.group(1) if m else name

    # -- labels -----------------------------------------------------------------------------

    def label_windows(self, recording: Recording, spans, options):
        frac = float(options.get("seizure_overlap", 0.5))
        seizures = recording.extra.get("seizures", ())
        labels: list[dict[str, Any] | None] = []
        for a, b in spans:
            covered = sum(max(0.0, min(b, e) - max(a, s)) for s, e in seizures)
            labels.append({"seizure": int(covered >= frac * (b - a) - 1e-9)})
        ratio = float(options.get("max_nonseizure_ratio", 0.0))
        if ratio > 0:
            n_seizure = sum(lab["seizure"] for lab in labels)
            others = [i for i, lab in enumerate(labels) if not lab["seizure"]]
            keep = int(round(ratio * n_seizure)) if n_seizure else int(options.get("seizure_free_windows", 10))
            if keep < len(others):
                chosen = {others[int((k + 0.5) * len(others) / keep)] for k in range(keep)} if keep else set()
                for i in others:
                    if i not in chosen:
                        labels[i] = None
        return labels

    def caption(self, row: Mapping[str, Any]) -> str:
        from sd_core.plugins.captions import describe_subject

        state = {"1": "during a seizure", "0": "outside seizures"}.get(str(row.get("seizure")), "")
        return describe_subject(row, "with epilepsy" + (f", {state}" if state else ""))

    # -- demo -------------------------------------------------------------------------------

    def write_demo(self, root: Path, seed: int = 0, **kw: Any) -> None:
        from sd_chbmit.demo import write_chbmit

        write_chbmit(root, seed, **kw)

    def demo_size(self, size: str, scale: float = 1.0) -> tuple[dict[str, Any], int]:
        """Full size: the demo's 5 cases with CHB-MIT's hours and seizures per case (about 980 h
        and 198 seizures over 24 cases: 41 h and 8 seizures a case, Shoeb 2009), times
        ``scale``, in one-hour recordings as most of CHB-MIT's are; 23 derivations of 2-byte EDF
        samples at 256 Hz. The other 19 cases are not written."""
        if size != "full":
            return super().demo_size(size, scale)
        from sd_chbmit.demo import CASES

        hours, seizures = max(1, round(980 / 24 * scale)), max(1, round(198 / 24 * scale))
        cases = {}
        for case, (gender, age, recordings) in CASES.items():
            recs = [(f"{case}_{i + 1:02d}", 3600.0, 1 if i < seizures else 0) for i in range(hours)]
            if any(name.startswith("*") for name, _, _ in recordings):  # keep the montage change
                recs[-1] = ("*" + recs[-1][0], *recs[-1][1:])
            cases[case] = (gender, age, recs)
        return {"cases": cases}, len(cases) * hours * 3600 * 256 * 23 * 2


@hookimpl
def sd_datasets():
    return [ChbmitDataset()]


@hookimpl
def sd_tasks():
    return [
        TaskSpec("seizure", NAME, CLASSIFICATION, ("0", "1"), description="0 no seizure, 1 seizure"),
        TaskSpec("gender", NAME, CLASSIFICATION, ("F", "M"), description="subject's gender"),
        TaskSpec("age", NAME, REGRESSION, description="subject's age in years"),
        TaskSpec("mit_condition", NAME, CLASSIFICATION, ("0_F", "0_M", "1_F", "1_M"),
                 ("seizure", "gender"), "seizure × gender"),
    ]
