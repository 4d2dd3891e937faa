"""Neuroscan ``.cnt`` (SEED-V's format): a header reader that sizes files MNE cannot, a memory-
bounded MNE Raw that reads only the span and channels asked for, and a small streaming writer.

Layout (Neuroscan "SETUP" structure, as MNE's ``mne/io/cnt/_utils.py`` and ``cnt.py`` read it)::

    0      900-byte setup header: "Version 3.0", patient, date (225, "mm/dd/yy"), time (235),
           n_channels (370, uint16), rate (376, uint16), NumSamples (864, int32),
           EventTablePos (886, int32), ContinuousSeconds (890, float32), ChannelOffset (894, int32)
    900    one 75-byte record per channel: label (0, 10 bytes), bad flag (14), x/y (19, 23, float32),
           baseline (47, int16), sensitivity (59, float32), calibration (71, float32)
    900 + 75·C   samples, int16 or int32, channel-fastest (blocks of ChannelOffset/bytes samples
           per channel where ChannelOffset > bytes per sample)
    EventTablePos   event table: type (uint8), size (int32), offset (int32), then the events
           (type 2/3: 19 bytes each: StimType, KeyBoard, KeyPad_Accept, Offset = file position)

A sample in volts is ``(value − baseline) · calibration · sensitivity · 1e-6 / 204.8``.

Why not just ``mne.io.read_raw_cnt``:

1. **Sizing.** The header does not say whether samples are 16 or 32 bit. MNE's
   ``data_format="auto"`` infers it from ``(EventTablePos − data offset) / (n_channels ·
   NumSamples)``, which must come out as exactly 2 or 4. In SEED-V's ``7_1_20180411.cnt`` and in
   the real test file ``test_CNT_events_mne_JWoess_clipped.cnt`` it does not (there are bytes
   between the samples and the event table), and MNE raises ``RuntimeError: Could not
   automatically compute number of bytes per sample``. :func:`read_header` decides instead from
   what must hold in any case: ``NumSamples × n_channels × bytes`` must fit between the data
   offset and the event table. An exact fit wins, then the only width that fits; where both fit,
   or the header gives no usable size at all (SEED-V's NumSamples of −732), the samples
   themselves tell 32-bit from 16-bit (:mod:`sd_seed.width`), or, where they cannot, the reader
   stops and asks for ``data_format``, which overrides all this.
2. **numpy 2 overflow.** MNE up to 1.11 multiplied header fields read as numpy ``int32``/
   ``uint32`` scalars into byte counts (``data_size // (n_samples * n_channels)`` in
   ``_get_cnt_info``); under numpy 2's promotion rules (NEP 50) the Python-int product is cast
   back to ``int32`` and raises ``OverflowError: Python integer 283467793224 out of bounds for
   int32`` on SEED-V sessions, whose NumSamples field holds 4294966564 (−732 as int32)
   (mne-python #13547, torcheeg #145). MNE 1.12 turned those fields into Python ints
   (``_compute_robust_sizes`` in ``mne/io/cnt/_utils.py``); this module never does arithmetic on
   numpy integer scalars from the header (every field goes through ``int()``/``struct``), so it
   does not depend on which MNE is installed.
3. **Memory.** MNE's ``RawCNT._read_segment_file`` reads every channel in blocks of up to
   100 MB and keeps two float64 copies of each block, about 450 MB to read one 5-minute trial of
   a 66-channel session. :class:`RawNeuroscan` reads 4 MB at a time and keeps only the channels
   asked for.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Sequence

import mne
import numpy as np

from sd_core.errors import DatasetError
from sd_seed.width import sample_width

SETUP_BYTES = 900
CHANNEL_BYTES = 75
NCHANNELS_AT = 370
RATE_AT = 376
NSAMPLES_AT = 864
EVENT_TABLE_AT = 886
CONTINUOUS_SECONDS_AT = 890
CHANNEL_OFFSET_AT = 894
DATA_FORMATS = ("auto", "int16", "int32")
#: bytes read at a time by :class:`RawNeuroscan`
READ_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CntHeader:
    path: Path
    n_channels: int
    sfreq: float
    n_samples: int  # samples per channel that are really there
    bytes_per_sample: int  # 2 or 4
    channel_offset: int  # samples per channel per block (1: channel-fastest)
    data_offset: int
    event_offset: int | None  # None where the header's pointer is not inside the file
    names: tuple[str, ...]
    baselines: tuple[int, ...]
    cals: tuple[float, ...]  # volts per unit
    bads: tuple[str, ...]
    header_n_samples: int  # NumSamples as stored (may be wrong)
    how: str  # how bytes_per_sample was decided

    @property
    def dtype(self) -> str:
        return "<i4" if self.bytes_per_sample == 4 else "<i2"

    @property
    def data_end(self) -> int:
        return self.data_offset + self.n_samples * self.n_channels * self.bytes_per_sample


def _unique(names: Sequence[str]) -> list[str]:
    out, seen = [], {}
    for i, n in enumerate(names):
        n = n or f"CH{i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}-{seen[n]}"
        seen.setdefault(n, 0)
        out.append(n)
    return out


def read_header(path: Path, data_format: str = "auto") -> CntHeader:
    """Parse and size a ``.cnt`` file. Raises :class:`DatasetError` (one line) if it is missing,
    not a Neuroscan CNT file, or cannot be sized."""
    path = Path(path)
    if data_format not in DATA_FORMATS:
        raise DatasetError(f"data_format must be one of {', '.join(DATA_FORMATS)}, not {data_format!r}")
    if not path.is_file():
        raise DatasetError(f"{path.name}: file not found ({path})")
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        setup = fh.read(SETUP_BYTES)
        if len(setup) < SETUP_BYTES:
            raise DatasetError(f"{path.name}: not a Neuroscan CNT file ({size} bytes, shorter than "
                               f"its {SETUP_BYTES}-byte header); download it again")
        n_channels = int(struct.unpack_from("<H", setup, NCHANNELS_AT)[0])
        rate = int(struct.unpack_from("<H", setup, RATE_AT)[0])
        header_n = int(struct.unpack_from("<i", setup, NSAMPLES_AT)[0])
        event_at = int(struct.unpack_from("<i", setup, EVENT_TABLE_AT)[0])
        block = int(struct.unpack_from("<i", setup, CHANNEL_OFFSET_AT)[0])
        data_offset = SETUP_BYTES + CHANNEL_BYTES * n_channels
        if n_channels == 0 or rate == 0 or data_offset > size:
            raise DatasetError(
                f"{path.name}: not a Neuroscan CNT file (header says {n_channels} channels at "
                f"{rate} Hz; the file has {size} bytes)")
        records = fh.read(CHANNEL_BYTES * n_channels)

    names, baselines, cals, bads = [], [], [], []
    for i in range(n_channels):
        rec = records[i * CHANNEL_BYTES:(i + 1) * CHANNEL_BYTES]
        names.append(rec[:10].split(b"\x00", 1)[0].decode("latin-1").strip())
        if rec[14]:
            bads.append(i)
        baselines.append(int(struct.unpack_from("<h", rec, 47)[0]))
        sensitivity = float(struct.unpack_from("<f", rec, 59)[0])
        calib = float(struct.unpack_from("<f", rec, 71)[0])
        cals.append(calib * sensitivity * 1e-6 / 204.8)
    names = _unique(names)

    event_ok = data_offset < event_at <= size
    data_bytes = (event_at if event_ok else size) - data_offset
    if data_bytes < 2 * n_channels:
        raise DatasetError(f"{path.name}: holds no samples ({size} bytes for {n_channels} channels)")
    if data_format != "auto":
        nbytes, how = (2 if data_format == "int16" else 4), f"data_format = {data_format!r}"
    else:
        nbytes, how = None, ""
        if header_n > 0:
            exact = [b for b in (4, 2) if header_n * n_channels * b == data_bytes]
            fits = [b for b in (4, 2) if header_n * n_channels * b <= data_bytes]
            if exact:
                nbytes, how = exact[0], "header: samples fill the data exactly"
            elif len(fits) == 1 and event_ok:
                # MNE's "auto" gives up here (RuntimeError): the samples do not fill the space before
                # the event table exactly. They must fit in it, though, and only one width does.
                nbytes, how = fits[0], "header: the only sample width whose samples fit before the event table"
            elif fits and event_ok:
                # Both widths fit (bytes to spare before the event table, as in the clipped test file):
                # the samples decide, looking only where there are samples whichever the width (the
                # spare bytes after them need not look like samples).
                nbytes, evidence = sample_width(path, data_offset, n_channels, header_n * n_channels * 2, block)
                how = f"samples (both widths fit before the event table): {evidence}"
        if not how:
            where = "event table" if event_ok else "end of the file"
            nbytes, evidence = sample_width(path, data_offset, n_channels, data_bytes, block)
            how = (f"samples (the header's sample count, {header_n}, is unusable; {data_bytes} bytes "
                   f"before the {where}): {evidence}")
        if nbytes is None:
            raise DatasetError(
                f"{path.name}: cannot tell whether samples are 16 or 32 bit ({evidence}); set "
                f"data_format = \"int16\" or \"int32\" under [datasets.seed] in sd.toml")
    fit = data_bytes // (n_channels * nbytes)
    n_samples = header_n if 0 < header_n <= fit else fit
    if n_samples <= 0:
        raise DatasetError(f"{path.name}: holds no samples ({size} bytes for {n_channels} channels)")
    channel_offset = block // nbytes if block > 1 else 1
    if channel_offset > 1:
        n_samples -= n_samples % channel_offset  # whole blocks only
    return CntHeader(path, n_channels, float(rate), n_samples, nbytes, max(1, channel_offset), data_offset,
                     event_at if event_ok else None, tuple(names), tuple(baselines), tuple(cals),
                     tuple(names[i] for i in bads), header_n, how)


def read_samples(header: CntHeader, rows: Sequence[int] | np.ndarray, start: int, stop: int,
                 out: np.ndarray | None = None, chunk_bytes: int = READ_BYTES) -> np.ndarray:
    """Integer samples ``start:stop`` (baseline removed, as float64) of channels ``rows``.

    Reads whole blocks of ``chunk_bytes`` at most, so memory stays at the output plus one chunk.
    """
    rows = np.asarray(rows, dtype=np.intp)
    c, nb, co = header.n_channels, header.bytes_per_sample, header.channel_offset
    if out is None:
        out = np.empty((len(rows), stop - start), dtype=np.float64)
    base = np.asarray(header.baselines, dtype=np.float64)[rows][:, None]
    block_samples = co  # samples per channel in one block of the file
    block_bytes = c * co * nb
    per_chunk = max(1, chunk_bytes // block_bytes)  # blocks per read
    first, last = start // co, -(-stop // co)  # blocks covering the span
    with open(header.path, "rb") as fh:
        b = first
        while b < last:
            nblk = min(per_chunk, last - b)
            fh.seek(header.data_offset + b * block_bytes)
            raw = np.fromfile(fh, dtype=header.dtype, count=nblk * c * co)
            if raw.size < nblk * c * co:
                have = header.data_offset + b * block_bytes + raw.size * nb
                raise DatasetError(
                    f"{header.path.name}: truncated CNT file (it ends at byte {have}, inside the "
                    f"samples); download it again")
            # (blocks, channels, samples in block) → channels × samples, only the wanted rows
            sel = raw.reshape(nblk, c, co)[:, rows, :].transpose(1, 0, 2).reshape(len(rows), nblk * co)
            s0 = b * block_samples  # first sample of this read
            lo, hi = max(start, s0), min(stop, s0 + nblk * co)
            out[:, lo - start:hi - start] = sel[:, lo - s0:hi - s0]
            out[:, lo - start:hi - start] -= base
            b += nblk
    return out


def _meas_date(path: Path) -> datetime | None:
    with open(path, "rb") as fh:
        fh.seek(225)
        date = fh.read(10).split(b"\x00", 1)[0].decode("latin-1").strip()
        clock = fh.read(12).split(b"\x00", 1)[0].decode("latin-1").strip()
    try:
        from datetime import timezone

        return datetime.strptime(f"{date} {clock}", "%m/%d/%y %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


class RawNeuroscan(mne.io.BaseRaw):
    """An unloaded MNE Raw over a ``.cnt`` file that reads only the span and channels asked for."""

    def __init__(self, header: CntHeader):
        info = mne.create_info(list(header.names), header.sfreq, "eeg")
        for ch, cal in zip(info["chs"], header.cals):  # entries of chs may be edited in place
            ch["cal"] = cal
            ch["range"] = 1.0
        info.set_meas_date(_meas_date(header.path))
        info["bads"] = list(header.bads)
        super().__init__(info, preload=False, filenames=[header.path], raw_extras=[{"header": header}],
                         last_samps=[header.n_samples - 1], orig_format="int", verbose="error")

    @property
    def header(self) -> CntHeader:
        return self._raw_extras[0]["header"]

    @property
    def sd_notes(self) -> list[str]:
        """What a preprocessing run should record about this file (for the notes it keeps in
        ``preprocess.json``): how wide its samples were taken to be, and why."""
        h = self.header
        verb = "set by" if h.how.startswith("data_format") else "decided from the"
        return [f"{h.path.name}: {8 * h.bytes_per_sample}-bit samples, {h.n_samples} per channel; {verb} {h.how}"]

    def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):
        header: CntHeader = self._raw_extras[fi]["header"]
        rows = np.arange(header.n_channels)[idx]
        if mult is not None:  # projections: mult already holds the calibration
            data[:] = mult @ read_samples(header, rows, int(start), int(stop))
        else:  # straight into the output: no second copy of the span
            read_samples(header, rows, int(start), int(stop), out=data)
            data *= cals


def read_raw_neuroscan(path: Path, data_format: str = "auto") -> RawNeuroscan:
    """The ``.cnt`` file as an unloaded MNE Raw (see the module's notes)."""
    return RawNeuroscan(read_header(path, data_format))


# -- writing --------------------------------------------------------------------------------------

def _put(buf: bytearray, at: int, fmt: str, *values) -> None:
    struct.pack_into(fmt, buf, at, *values)


def _text(buf: bytearray, at: int, width: int, text: str) -> None:
    raw = text.encode("latin-1")[:width]
    buf[at:at + width] = raw.ljust(width, b"\x00")


def write_cnt(path: Path, chunks: Iterable[np.ndarray], names: Sequence[str], sfreq: int,
              bytes_per_sample: int = 4, unit_uv: float | None = None,
              events: Sequence[tuple[float, int]] = (), patient: str = "", sex: str = "U",
              date: datetime | None = None, header_n_samples: int | None = None,
              header_event_offset: int | None = None) -> int:
    """Write a Neuroscan ``.cnt`` file, streaming ``chunks`` of (channels × samples) to disk.

    Float chunks are volts and are stored in units of ``unit_uv`` µV; integer chunks are stored as
    they are. The default units, 2/204.8 ≈ 0.0098 µV for 32-bit and 16/204.8 ≈ 0.078 µV for 16-bit
    samples (±2560 µV), make the calibration the header stores as float32 exact. ``events`` are (seconds,
    stimulus code) pairs, written as a type-2 event table that MNE reads as annotations.
    ``header_n_samples``/``header_event_offset`` override what the header says, to write the broken
    headers found in the wild. Returns the number of samples per channel written.
    """
    path = Path(path)
    c = len(names)
    if bytes_per_sample not in (2, 4):
        raise ValueError("bytes_per_sample must be 2 or 4")
    if unit_uv is None:
        unit_uv = (2.0 if bytes_per_sample == 4 else 16.0) / 204.8
    dtype = "<i4" if bytes_per_sample == 4 else "<i2"
    info = np.iinfo(dtype)
    # sensitivity · calibration / 204.8 = µV per unit; calibration 1
    sensitivity = unit_uv * 204.8
    setup = bytearray(SETUP_BYTES)
    _text(setup, 0, 12, "Version 3.0")
    _put(setup, 20, "<B", 0)
    _text(setup, 21, 20, "0")
    _text(setup, 121, 20, patient)
    _text(setup, 143, 1, sex)
    _text(setup, 144, 1, "R")
    date = date or datetime(2018, 1, 1, 9, 0, 0)
    _text(setup, 225, 10, date.strftime("%m/%d/%y"))
    _text(setup, 235, 12, date.strftime("%H:%M:%S"))
    _put(setup, 353, "<B", 1)  # type: continuous (EEG)
    _put(setup, NCHANNELS_AT, "<H", c)
    _put(setup, RATE_AT, "<H", int(sfreq))
    _put(setup, CHANNEL_OFFSET_AT, "<i", bytes_per_sample)  # one sample per channel per block
    channels = bytearray(CHANNEL_BYTES * c)
    for i, name in enumerate(names):
        at = i * CHANNEL_BYTES
        _text(channels, at, 10, name)
        _put(channels, at + 19, "<ff", float(np.cos(2 * np.pi * i / c)), float(np.sin(2 * np.pi * i / c)))
        _put(channels, at + 47, "<h", 0)
        _put(channels, at + 59, "<f", sensitivity)
        _put(channels, at + 71, "<f", 1.0)
    data_offset = SETUP_BYTES + CHANNEL_BYTES * c
    n = 0
    with open(path, "wb") as fh:
        fh.write(setup)
        fh.write(channels)
        for chunk in chunks:
            chunk = np.asarray(chunk)
            if chunk.ndim != 2 or chunk.shape[0] != c:
                raise ValueError(f"chunks must be ({c}, samples), got {chunk.shape}")
            if chunk.dtype.kind in "iu":
                units = chunk
            else:
                units = np.rint(chunk * (1e6 / unit_uv))
            units = np.clip(units, info.min, info.max).astype(dtype)
            fh.write(np.ascontiguousarray(units.T).tobytes())
            n += chunk.shape[1]
        event_offset = data_offset + n * c * bytes_per_sample
        table = bytearray()
        for seconds, code in events:
            sample = int(round(seconds * sfreq))
            # MNE: onset sample = (Offset − data offset) // (C · bytes) − 1
            offset = data_offset + (sample + 1) * c * bytes_per_sample
            table += struct.pack("<HBBihhfBBB", int(code), 0, 0, offset, 0, 0, 0.0, 0, 0, 0)
        fh.write(struct.pack("<Bii", 2, len(table), 0))
        fh.write(table)
        fh.seek(NSAMPLES_AT)
        fh.write(struct.pack("<i", n if header_n_samples is None else header_n_samples))
        fh.seek(EVENT_TABLE_AT)
        fh.write(struct.pack("<i", event_offset if header_event_offset is None else header_event_offset))
        fh.seek(CONTINUOUS_SECONDS_AT)
        fh.write(struct.pack("<f", n / sfreq))
    return n
