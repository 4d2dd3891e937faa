"""PhysioNet WFDB annotation files (the MIT format), as CHB-MIT ships them in
``<recording>.edf.seizures`` sidecars: a reader and a writer, no dependency on ``wfdb``.

The file is a sequence of 16-bit little-endian words. Each word holds a 6-bit code ``A`` (high bits)
and a 10-bit number ``I`` (low bits):

- ``A = 0, I = 0``: end of file.
- ``A = 59`` (SKIP): the next 4 bytes are a 32-bit signed interval in PDP-11 order (high 16-bit
  word first, each word little-endian), added to the time.
- ``A = 60, 61, 62`` (NUM, SUB, CHN): ``I`` sets the field of the annotation just read.
- ``A = 63`` (AUX): ``I`` bytes of text follow (padded to an even length), attached to the
  annotation just read.
- any other ``A`` is an annotation of that code at ``time += I`` samples.

CHB-MIT files start with a NOTE (code 22) at time 0 whose aux text is ``## time resolution: 256``,
then a SKIP of −1 and a null annotation (code 0) one sample later, which bring the time back to 0.
Each seizure is then a pair of annotations, onset (``[``, code 32) and offset (``]``, code 33).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

SKIP, NUM, SUB, CHN, AUX = 59, 60, 61, 62, 63
NOTE = 22
NULL = 0
ONSET, OFFSET = 32, 33  # "[" and "]"
DEFAULT_FS = 256.0
_RESOLUTION = re.compile(r"time resolution:\s*([0-9.]+)")


class AnnotationError(ValueError):
    """The bytes are not a valid MIT-format annotation file."""


@dataclass
class Annotation:
    sample: int
    code: int
    num: int = 0
    sub: int = 0
    chan: int = 0
    aux: bytes = b""


def parse_annotations(data: bytes) -> list[Annotation]:
    """Every annotation in the file, in order (header and null annotations included)."""
    out: list[Annotation] = []
    pos, time = 0, 0
    n = len(data)
    while True:
        if pos + 2 > n:
            raise AnnotationError(f"ends without an end-of-file mark after {len(out)} annotations")
        word = data[pos] | (data[pos + 1] << 8)
        pos += 2
        code, value = word >> 10, word & 0x3FF
        if code == 0 and value == 0:
            return out
        if code == SKIP:
            if pos + 4 > n:
                raise AnnotationError("ends inside a SKIP interval")
            hi, lo = struct.unpack_from("<HH", data, pos)
            pos += 4
            interval = (hi << 16) | lo
            if interval >= 1 << 31:
                interval -= 1 << 32
            time += interval
        elif code in (NUM, SUB, CHN):
            if not out:
                raise AnnotationError(f"modifier code {code} before any annotation")
            setattr(out[-1], {NUM: "num", SUB: "sub", CHN: "chan"}[code], value)
        elif code == AUX:
            if not out:
                raise AnnotationError("aux text before any annotation")
            if pos + value > n:
                raise AnnotationError("ends inside an aux text")
            out[-1].aux = data[pos:pos + value]
            pos += value + (value & 1)
        else:
            time += value
            out.append(Annotation(time, code))


def time_resolution(annotations: list[Annotation]) -> float | None:
    """The sampling rate the header note declares (``## time resolution: 256``), if any."""
    for a in annotations:
        m = _RESOLUTION.search(a.aux.decode("latin-1")) if a.aux else None
        if m:
            return float(m.group(1))
    return None


def seizure_intervals(data: bytes, fs: float | None = None) -> tuple[list[tuple[float, float]], float]:
    """([(onset s, offset s), ...], sampling rate) of a ``.seizures`` file's bytes.

    Onsets and offsets are the annotations other than the header note and null annotations,
    taken in pairs. ``fs`` is used when the file declares no time resolution (else 256 Hz).
    """
    anns = parse_annotations(data)
    rate = time_resolution(anns) or fs or DEFAULT_FS
    marks = [a for a in anns if a.code not in (NULL, NOTE)]
    if len(marks) % 2:
        raise AnnotationError(f"{len(marks)} seizure marks, not onset/offset pairs")
    out = []
    for on, off in zip(marks[::2], marks[1::2]):
        if off.sample <= on.sample:
            raise AnnotationError(f"a seizure ends (sample {off.sample}) before it starts (sample {on.sample})")
        out.append((on.sample / rate, off.sample / rate))
    return out, rate


def read_seizure_file(path: Path, fs: float | None = None) -> list[tuple[float, float]]:
    """Seizure (onset, offset) seconds of a CHB-MIT ``.seizures`` sidecar."""
    return seizure_intervals(Path(path).read_bytes(), fs)[0]


# -- writing --------------------------------------------------------------------------------------

def _word(code: int, value: int) -> bytes:
    return struct.pack("<H", (code << 10) | value)


def _skip(interval: int) -> bytes:
    u = interval & 0xFFFFFFFF
    return _word(SKIP, 0) + struct.pack("<HH", u >> 16, u & 0xFFFF)


def encode_annotations(marks: list[tuple[int, int]], fs: float = DEFAULT_FS) -> bytes:
    """MIT-format bytes for (sample, code) marks, with CHB-MIT's time-resolution header."""
    out = bytearray()
    aux = f"## time resolution: {fs:g}".encode("ascii")
    out += _word(NOTE, 0) + _word(AUX, len(aux)) + aux + (b"\0" if len(aux) & 1 else b"")
    out += _skip(-1) + _word(NULL, 1)  # back to time 0, as PhysioNet's writer leaves it
    time = 0
    for sample, code in marks:
        delta = sample - time
        if 0 <= delta <= 0x3FF:
            out += _word(code, delta)
        else:
            out += _skip(delta) + _word(code, 0)
        time = sample
    out += _word(0, 0)
    return bytes(out)


def write_seizure_file(path: Path, seizures: list[tuple[float, float]], fs: float = DEFAULT_FS) -> None:
    """Write a ``.seizures`` sidecar for (onset, offset) seconds (rounded to samples)."""
    marks = []
    for on, off in sorted(seizures):
        marks += [(int(round(on * fs)), ONSET), (int(round(off * fs)), OFFSET)]
    Path(path).write_bytes(encode_annotations(marks, fs))
