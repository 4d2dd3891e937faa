"""EDF helpers shared by the EDF dataset plugins: a header check that catches truncated files,
header labels, and an exporter whose output is checked by reading it back.

MNE reads a truncated EDF without complaint (it just returns fewer samples), so a recording that
was cut short by an interrupted download would silently lose its end. :func:`check_edf` compares
the size the header promises with the size of the file and says what is wrong in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sd_core.errors import DatasetError

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


@dataclass(frozen=True)
class EdfHeader:
    header_bytes: int
    n_records: int  # -1: unknown (allowed by the standard while recording)
    record_seconds: float
    labels: tuple[str, ...]
    samples_per_record: tuple[int, ...]
    bytes_per_sample: int  # 2 for EDF, 3 for BDF

    @property
    def record_bytes(self) -> int:
        return sum(self.samples_per_record) * self.bytes_per_sample

    @property
    def expected_size(self) -> int | None:
        if self.n_records < 0:
            return None
        return self.header_bytes + self.n_records * self.record_bytes


def _int(field: bytes, what: str, path: Path) -> int:
    try:
        return int(field.decode("ascii", "replace").strip())
    except ValueError:
        raise DatasetError(f"{path.name}: not a readable EDF file (header field {what!r} is "
                           f"{field.decode('ascii', 'replace').strip()!r})") from None


def read_header(path: Path) -> EdfHeader:
    """The fixed and per-signal header fields MNE does not expose. Raises DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path.name}: file not found ({path})")
    with open(path, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise DatasetError(f"{path.name}: not an EDF file or truncated inside its header "
                               f"({len(fixed)} bytes); download it again")
        bdf = fixed[:1] == b"\xff"
        if not bdf and fixed[:1] != b"0":
            raise DatasetError(f"{path.name}: not an EDF file (it does not start with an EDF header)")
        header_bytes = _int(fixed[184:192], "header bytes", path)
        n_records = _int(fixed[236:244], "number of data records", path)
        try:
            record_seconds = float(fixed[244:252].decode("ascii", "replace").strip())
        except ValueError:
            raise DatasetError(f"{path.name}: not a readable EDF file (bad data record duration)") from None
        ns = _int(fixed[252:256], "number of signals", path)
        rest = fh.read(ns * 256)
    if ns <= 0 or len(rest) < ns * 256 or header_bytes != 256 * (ns + 1):
        raise DatasetError(f"{path.name}: EDF header is truncated or inconsistent "
                           f"({ns} signals, {header_bytes} header bytes); download it again")
    labels = tuple(rest[i * 16:(i + 1) * 16].decode("latin-1").strip() for i in range(ns))
    off = ns * (16 + 80 + 8 + 8 + 8 + 8 + 8 + 80)
    samples = tuple(_int(rest[off + i * 8: off + (i + 1) * 8], "samples per record", path)
                    for i in range(ns))
    bad = next((i for i, n in enumerate(samples) if n < 1), None)
    if bad is not None:
        raise DatasetError(f"{path.name}: EDF header says signal {bad + 1} ({labels[bad]!r}) has "
                           f"{samples[bad]} samples per data record (at least 1 is needed); the file "
                           "is damaged, download it again")
    if n_records < -1:
        raise DatasetError(f"{path.name}: EDF header says the file has {n_records} data records (-1, "
                           "unknown, is the only negative number allowed); the file is damaged")
    return EdfHeader(header_bytes, n_records, record_seconds, labels, samples, 3 if bdf else 2)


def check_edf(path: Path) -> EdfHeader:
    """Raise DatasetError when the file is missing, not EDF, or shorter than its header says."""
    header = read_header(path)
    expected = header.expected_size
    size = Path(path).stat().st_size
    if expected is not None and size < expected:
        have = max(0, size - header.header_bytes) / max(1, header.record_bytes)
        raise DatasetError(
            f"{Path(path).name}: truncated EDF ({size} of {expected} bytes: {have:.1f} of "
            f"{header.n_records} data records); download it again"
        )
    return header


def signal_labels(header: EdfHeader) -> list[str]:
    """The labels of the signals MNE exposes as channels (annotation signals left out)."""
    return [lab for lab in header.labels if lab not in ANNOTATION_LABELS]


def relabel(path: Path, labels: dict[int, str]) -> None:
    """Overwrite the 16-byte label field of signals (0-based index → label) in place.

    Used by demo writers to give signals names MNE refuses to export (duplicates, ``-``).
    """
    with open(path, "r+b") as fh:
        fh.seek(252)
        ns = int(fh.read(4).decode("ascii").strip())
        for i, lab in labels.items():
            if not 0 <= i < ns:
                raise ValueError(f"signal {i} out of range (0…{ns - 1})")
            raw = lab.encode("ascii")
            if len(raw) > 16:
                raise ValueError(f"EDF labels hold at most 16 characters: {lab!r}")
            fh.seek(256 + 16 * i)
            fh.write(raw.ljust(16, b" "))


def export_edf(path: Path, data, names, fs: float, types=None, check: bool = True, events=()) -> None:
    """Write (channels, samples) volts as EDF through MNE's exporter and check the read-back.

    For demo writers (``DatasetPlugin.write_demo``): ``names`` are the channel labels as the
    file should hold them (``"EEG Fp1"``), ``types`` their MNE channel types (default all
    ``"eeg"``). ``events``: (onset s, duration s, description) triples written as EDF+
    annotations, which ``DatasetPlugin.events`` hands to ``label_windows``.

    MNE chooses each channel's physical range from its own minimum and maximum, so the signal
    always fits; the check makes sure that what a reader gets back is what was meant (to within
    the 16-bit quantisation of the EDF format), annotations included.
    """
    import mne
    import numpy as np

    path = Path(path)
    data = np.asarray(data, dtype=np.float64)
    info = mne.create_info(list(names), float(fs), list(types) if types else "eeg")
    raw = mne.io.RawArray(data, info, verbose="error")
    events = [(float(o), float(d), str(t)) for o, d, t in events]
    if events:
        raw.set_annotations(mne.Annotations(*zip(*events)))
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    if check:
        opened = mne.io.read_raw_edf(path, preload=True, verbose="error")
        got = [(round(float(o), 3), round(float(d), 3), str(t)) for o, d, t in
               zip(opened.annotations.onset, opened.annotations.duration, opened.annotations.description)]
        if sorted(got) != sorted((round(o, 3), round(d, 3), t) for o, d, t in events):
            raise RuntimeError(f"{path.name}: EDF annotations read back as {got}, not {events}")
        back = opened.get_data()
        span = np.ptp(data, axis=1, keepdims=True) + 1e-12
        err = np.abs(back[:, :data.shape[1]] - data) / span
        if back.shape != data.shape or float(err.max()) > 1e-2:
            raise RuntimeError(f"{path.name}: EDF read-back differs from the written signal "
                               f"(shape {back.shape} vs {data.shape}, max error {float(err.max()):.2g} of range)")
