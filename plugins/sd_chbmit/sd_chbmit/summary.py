"""CHB-MIT's text files: ``chbNN/chbNN-summary.txt`` and ``SUBJECT-INFO`` (reader and writer).

A summary file starts with the sampling rate and the channels of the case's EDF files, then has
one block per recording::

    File Name: chb01_03.edf
    File Start Time: 13:43:04
    File End Time: 14:43:04
    Number of Seizures in File: 1
    Seizure Start Time: 2996 seconds
    Seizure End Time: 3036 seconds

Recordings with several seizures number them (``Seizure 1 Start Time: 1679 seconds``; later cases
number single seizures too), and a ``Channels changed:`` block followed by ``Channel N: NAME``
lines gives the montage of the recordings listed after it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable

_FILE = re.compile(r"^\s*File\s+Name\s*:\s*(\S+)", re.IGNORECASE)
_COUNT = re.compile(r"^\s*Number\s+of\s+Seizures(?:\s+in\s+File)?\s*:\s*(\d+)", re.IGNORECASE)
_SEIZURE = re.compile(
    r"^\s*Seizure(?:\s*(\d+))?\s+(Start|End)(?:\s+Time)?\s*:\s*([0-9]+(?:\.[0-9]*)?)\s*(?:s|sec|secs|seconds)?\s*$",
    re.IGNORECASE)
_CHANNELS = re.compile(r"^\s*Channels\s+(in\s+EDF\s+Files|changed)\s*:?", re.IGNORECASE)
_CHANNEL = re.compile(r"^\s*Channel\s+(\d+)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_RATE = re.compile(r"^\s*Data\s+Sampling\s+Rate\s*:\s*([0-9.]+)", re.IGNORECASE)
_START = re.compile(r"^\s*File\s+Start\s+Time\s*:\s*(\S+)", re.IGNORECASE)
_END = re.compile(r"^\s*File\s+End\s+Time\s*:\s*(\S+)", re.IGNORECASE)


@dataclass
class FileEntry:
    """One recording's block: its seizures (seconds from the file's start) and the montage in force."""

    name: str
    seizures: list[tuple[float, float]] = field(default_factory=list)
    declared: int | None = None  # "Number of Seizures in File"
    channels: tuple[str, ...] = ()
    start_time: str = ""
    end_time: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class Summary:
    rate: float | None = None
    channels: tuple[str, ...] = ()  # the first montage ("Channels in EDF Files")
    files: dict[str, FileEntry] = field(default_factory=dict)


def parse_summary(text: str, source: str = "summary") -> Summary:
    """Parse a summary file. Problems of one recording's block are kept in its ``problems``."""
    return _SummaryReader(source).read(text)


def _label(key: tuple[str, int]) -> str:
    return f"seizure {key[1]}" if key[0] == "n" else "a seizure"


@dataclass
class _Block:
    """One recording's block as it is read: its entry and its seizure lines so far (numbered
    seizures keyed ("n", k), the single form ("u", i): the i-th start pairs with the i-th end)."""

    entry: FileEntry
    starts: dict[tuple[str, int], float] = field(default_factory=dict)
    ends: dict[tuple[str, int], float] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)
    single: dict[str, int] = field(default_factory=lambda: {"start": 0, "end": 0})

    def line(self, line: str, source: str) -> None:
        """A line of the block after its ``File Name``."""
        entry = self.entry
        if m := _START.match(line):
            entry.start_time = m.group(1)
        elif m := _END.match(line):
            entry.end_time = m.group(1)
        elif m := _COUNT.match(line):
            entry.declared = int(m.group(1))
        elif m := _SEIZURE.match(line):
            self.seizure(m, source)
        elif line.lower().startswith("seizure"):
            entry.problems.append(f"{source}: {entry.name}: cannot read {line!r}")

    def seizure(self, m: re.Match[str], source: str) -> None:
        """A ``Seizure [N] Start|End Time`` line."""
        kind = m.group(2).lower()
        if m.group(1) is not None:
            key = ("n", int(m.group(1)))
        else:  # the single form: the i-th start pairs with the i-th end
            self.single[kind] += 1
            key = ("u", self.single[kind])
        target = self.starts if kind == "start" else self.ends
        if key in target:
            self.entry.problems.append(f"{source}: {self.entry.name}: {_label(key)} has two {kind} times")
        target[key] = float(m.group(3))
        self.order.append(key)

    def finish(self, source: str) -> None:
        """Pair the starts with the ends into the entry's seizures; check the declared count."""
        entry = self.entry
        keys = list(dict.fromkeys(self.order))
        for k in keys:
            if k not in self.starts or k not in self.ends:
                what = "end" if k in self.starts else "start"
                entry.problems.append(f"{source}: {entry.name}: {_label(k)} has no {what} time")
                continue
            a, b = self.starts[k], self.ends[k]
            if b <= a:
                entry.problems.append(f"{source}: {entry.name}: {_label(k)} ends ({b:g} s) before it "
                                      f"starts ({a:g} s)")
                continue
            entry.seizures.append((a, b))
        entry.seizures.sort()
        if entry.declared is not None and entry.declared != len(keys) and not entry.problems:
            entry.problems.append(f"{source}: {entry.name}: says {entry.declared} seizure(s) but "
                                  f"gives times of {len(keys)}")


class _SummaryReader:
    """The state of reading one summary file, line by line."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.summary = Summary()
        self.first: list[str] | None = None  # the "Channels in EDF Files" montage
        self.montage: list[str] = []  # the montage in force
        self.reading_channels = False
        self.block: _Block | None = None

    def read(self, text: str) -> Summary:
        for raw_line in text.splitlines():
            self.line(raw_line.strip())
        self.finish_block()
        self.summary.channels = tuple(self.first or ())
        return self.summary

    def line(self, line: str) -> None:
        if not line:
            self.reading_channels = False
        elif set(line) <= {"*"}:  # the rules under headings
            pass
        elif m := _RATE.match(line):
            self.summary.rate = float(m.group(1))
        elif m := _CHANNELS.match(line):
            self.channels_heading(m.group(1))
        elif self.reading_channels and (m := _CHANNEL.match(line)):
            self.channel(int(m.group(1)), m.group(2))
        elif m := _FILE.match(line):
            self.file(m.group(1))
        elif self.block is not None:
            self.block.line(line, self.source)

    def channels_heading(self, which: str) -> None:
        """``Channels in EDF Files:`` or ``Channels changed:``: a new montage starts."""
        self.finish_block()
        self.montage = []
        if self.first is None and which.lower().startswith("in"):
            self.first = self.montage
        self.reading_channels = True

    def channel(self, idx: int, name: str) -> None:
        """A ``Channel N: NAME`` line of the montage being read."""
        while len(self.montage) < idx:
            self.montage.append("")
        self.montage[idx - 1] = name

    def file(self, name: str) -> None:
        """``File Name:``: a recording's block starts, with the montage in force."""
        self.finish_block()
        self.reading_channels = False
        entry = FileEntry(name, channels=tuple(self.montage))
        self.block = _Block(entry)
        if name in self.summary.files:
            entry.problems.append(f"{self.source}: {name} is listed twice")
        self.summary.files[name] = entry

    def finish_block(self) -> None:
        if self.block is not None:
            self.block.finish(self.source)
            self.block = None


#: SUBJECT-INFO cells that mean "not known"
MISSING = {"", "-", "--", "?", "n/a", "na", "unknown"}
_GENDERS = {"f": "F", "female": "F", "m": "M", "male": "M"}


def parse_subject_info(text: str, source: str = "SUBJECT-INFO") -> dict[str, tuple[str | None, int | None]]:
    """``SUBJECT-INFO`` → {case: (gender F/M or None, age in whole years or None)}.

    Lines like ``chb01<TAB>F<TAB>11`` (tabs or spaces); the header and anything that does not start
    with a case name are ignored. Ages may be decimal (``1.5`` → 1, whole years rounded down); empty
    cells (or ``-``, ``n/a``, ``?``) are unknown. A case listed twice, a gender other than F/M and an
    age that is not a number raise :class:`DatasetError` naming ``source`` and the line.
    """
    from sd_core.errors import DatasetError

    out: dict[str, tuple[str | None, int | None]] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or not re.fullmatch(r"chb\d+", parts[0], re.IGNORECASE):
            continue
        case = parts[0].lower()
        where = f"{source} line {n}"
        if case in out:
            raise DatasetError(f"{where}: case {case} is listed twice")
        g = parts[1] if len(parts) > 1 else ""
        gender = None
        if g.lower() not in MISSING:
            gender = _GENDERS.get(g.lower())
            if gender is None:
                raise DatasetError(f"{where}: gender {g!r} of {case} is neither F nor M")
        a = parts[2] if len(parts) > 2 else ""
        age = None
        if a.lower() not in MISSING:
            try:
                value = float(a)
            except ValueError:
                value = math.nan
            if not (math.isfinite(value) and 0 <= value < 150):
                raise DatasetError(f"{where}: age {a!r} of {case} is not a number of years")
            age = int(math.floor(value))
        out[case] = (gender, age)
    return out


# -- writing (demo data) ----------------------------------------------------------------------------

def _channel_lines(channels: Iterable[str]) -> list[str]:
    return [f"Channel {i}: {c}" for i, c in enumerate(channels, start=1)]


def format_summary(blocks: list[dict], rate: float = 256.0, numbered: bool = False) -> str:
    """A summary file. ``blocks``: dicts with ``name``, ``start``, ``end`` (clock times),
    ``seizures`` [(s, e), ...] and optionally ``channels`` (a montage that starts with this
    recording: the first block's is the "Channels in EDF Files" list, a later one a
    "Channels changed:" block). Several seizures are always numbered; ``numbered`` numbers
    single seizures too (as later cases do)."""
    lines = [f"Data Sampling Rate: {rate:g} Hz", "*************************", ""]
    for i, b in enumerate(blocks):
        if b.get("channels"):
            if i == 0:
                lines += ["Channels in EDF Files:", "**********************"]
            else:
                lines += ["Channels changed:", "*****************"]
            lines += _channel_lines(b["channels"]) + [""]
        lines += [f"File Name: {b['name']}", f"File Start Time: {b['start']}",
                  f"File End Time: {b['end']}", f"Number of Seizures in File: {len(b['seizures'])}"]
        many = numbered or len(b["seizures"]) > 1
        for k, (s, e) in enumerate(b["seizures"], start=1):
            tag = f"Seizure {k}" if many else "Seizure"
            lines += [f"{tag} Start Time: {s:g} seconds", f"{tag} End Time: {e:g} seconds"]
        lines.append("")
    return "\n".join(lines) + "\n"


def format_subject_info(cases: dict[str, tuple[str, float]]) -> str:
    lines = ["Case\tGender\tAge (years)"]
    lines += [f"{case}\t{g}\t{age:g}" for case, (g, age) in cases.items()]
    return "\n".join(lines) + "\n"
