"""Telling 16-bit from 32-bit Neuroscan samples from the samples themselves.

A ``.cnt`` header does not say how wide its samples are. Where its sample count is unusable (0 or
negative, as in SEED-V's ``7_1_20180411.cnt``) or both widths fit before the event table, the
bytes must decide, and they must not be fooled by a recording whose every other channel is flat
or quiet (read as 32-bit, such a 16-bit file gives half the samples, with a neighbouring channel
in the high half of every value: 5097 µV where the truth is 6.3 µV).

Each reading is judged by what real EEG never does, over stretches spread across the whole data:

- **jumps**: a channel that moves by half the 16-bit range (32768 units) or more from one sample to
  the next. Read as 32-bit, a 16-bit file does so whenever the neighbour in the high half changes
  at all, or the channel in the low half changes sign, and then by nearly whole multiples of 65536
  units (a 32-bit signal that is merely rough jumps by any amount). Read as 16-bit, a 32-bit file
  jumps whenever a value crosses a multiple of 65536 units (its low half wraps).
- **sign extension**: 32-bit values within ±32767 units have a high half that is exactly the sign
  of the low half (0 or −1). Sixteen-bit channels do not copy the sign of their neighbour.
- **off-multiple jumps**: read as 32-bit, a 32-bit file that is rough jumps by any amount; a 16-bit
  file only by nearly whole multiples of 65536 unless its own steps are large enough to jump by
  32768 read as 16-bit.
- **zig-zag**: read as 16-bit, a 32-bit file's "channels" alternate between two sources (two
  channels, or the low and high halves of one) from one sample to the next, so samples two apart
  are far closer than neighbours. A real channel is at least as close to its neighbour.

A width is taken only when the evidence points one way; otherwise :func:`sample_width` returns
None and the caller asks the user to set ``data_format``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HALF = 1 << 15
#: stretches read, spread evenly over the data, and bytes per stretch
STRETCHES = 64
STRETCH_BYTES = 64 * 1024


@dataclass
class _Counts:
    pairs: int = 0  # 32-bit values looked at
    neg: int = 0  # ... whose low half is negative as int16
    neg_ext: int = 0  # ... and whose high half is −1
    pos_ext: int = 0  # low half ≥ 0 and high half 0
    steps: dict = field(default_factory=lambda: {2: 0, 4: 0})
    jumps: dict = field(default_factory=lambda: {2: 0, 4: 0})
    whole: int = 0  # 32-bit reading: jumps within 16384 units of a multiple of 65536
    zigzag: list = field(default_factory=list)  # 16-bit reading, per channel and stretch: median
    # |x[t+2] − x[t]| / median |x[t+1] − x[t]| (channels that do not move left out)
    lanes: int = 0  # 16-bit reading: channels × stretches
    flat: int = 0  # ... of which exactly constant


def _block_samples(block: int, nbytes: int) -> int:
    """Samples per channel per block for this width (``ChannelOffset`` is in bytes; ≤ 1 = 1)."""
    return max(1, block // nbytes) if block > 1 else 1


def _channels(buf: bytes, c: int, nbytes: int, block: int) -> np.ndarray:
    co = _block_samples(block, nbytes)
    frame = c * co * nbytes
    n = len(buf) // frame
    x = np.frombuffer(buf[:n * frame], dtype="<i4" if nbytes == 4 else "<i2").astype(np.int64)
    return x.reshape(n, c, co).transpose(1, 0, 2).reshape(c, n * co)


def _add(counts: _Counts, buf: bytes, c: int, block: int) -> None:
    words = np.frombuffer(buf[:len(buf) // 4 * 4], dtype="<i2")
    lo, hi = words[0::2], words[1::2]
    neg = lo < 0
    counts.pairs += lo.size
    counts.neg += int(neg.sum())
    counts.neg_ext += int((hi[neg] == -1).sum())
    counts.pos_ext += int((hi[~neg] == 0).sum())
    for nbytes in (2, 4):
        x = _channels(buf, c, nbytes, block)
        if x.shape[1] < 3:
            continue
        d = np.diff(x, axis=1)
        counts.steps[nbytes] += d.size
        big = d[np.abs(d) >= HALF]
        counts.jumps[nbytes] += big.size
        if nbytes == 4:
            counts.whole += int((np.abs(big - 65536 * np.round(big / 65536)) < HALF // 2).sum())
        if nbytes == 2:
            m1 = np.median(np.abs(d), axis=1)
            m2 = np.median(np.abs(x[:, 2:] - x[:, :-2]), axis=1)
            moving = m1 + m2 > 0
            counts.zigzag += list(m2[moving] / np.maximum(m1[moving], 0.5))
            counts.lanes += x.shape[0]
            counts.flat += int((np.ptp(x, axis=1) == 0).sum())


def _pct(k: int, n: int) -> str:
    return f"{100 * k / max(n, 1):.1f} %"


def sample_width(path: Path, data_offset: int, n_channels: int, data_bytes: int,
                 block: int = 1) -> tuple[int | None, str]:
    """(2, 4 or None when the evidence is ambiguous, what the evidence was) for the samples in
    ``data_bytes`` bytes from ``data_offset`` (see the module's notes)."""
    c = max(1, n_channels)
    unit = math.lcm(c * _block_samples(block, 2) * 2, c * _block_samples(block, 4) * 4)
    size = max(unit, STRETCH_BYTES // unit * unit)
    usable = data_bytes // unit * unit
    counts = _Counts()
    starts: list[int] = []
    if usable >= unit:
        if usable <= STRETCHES * size:
            starts = [0]
            size = usable
        else:  # evenly spread, first and last stretch included
            last = (usable - size) // unit
            starts = sorted({int(round(k * last / (STRETCHES - 1))) * unit for k in range(STRETCHES)})
        with open(path, "rb") as fh:
            for s in starts:
                fh.seek(data_offset + s)
                _add(counts, fh.read(size), c, block)

    j16, j32 = counts.jumps[2], counts.jumps[4]
    n16, n32 = counts.steps[2], counts.steps[4]
    r16, r32 = j16 / max(n16, 1), j32 / max(n32, 1)
    jumps = (f"read as 16-bit {_pct(j16, n16)} of steps jump by half the 16-bit range or more, "
             f"read as 32-bit {_pct(j32, n32)}")
    pos = counts.pairs - counts.neg
    says32 = []
    if (counts.neg >= 0.01 * counts.pairs and counts.neg_ext >= 0.99 * counts.neg
            and counts.pos_ext >= 0.99 * pos):
        says32.append("read as 32-bit, the high half of "
                      f"{_pct(counts.neg_ext + counts.pos_ext, counts.pairs)} of values is the sign of "
                      "the low half")
    if r16 >= 0.001 and r32 <= r16 / 2 and counts.flat < 0.25 * counts.lanes:
        # (with every other 16-bit channel flat, a 16-bit recording saturating from rail to rail
        # reads like this too)
        says32.append(jumps)
    if j32 >= 100 and counts.whole <= 0.6 * j32 and r16 < 0.0001:
        # rough, but not the way a 16-bit file read as 32-bit is: a 16-bit channel whose steps put
        # 40 % of those jumps off a multiple of 65536 would itself jump by 32768 now and then
        says32.append(f"read as 32-bit, {_pct(j32 - counts.whole, j32)} of the {_pct(j32, n32)} of steps "
                      "that jump by half the 16-bit range or more are no multiple of 65536 units, and "
                      "read as 16-bit no step does")
    if counts.zigzag and float(np.median(counts.zigzag)) < 0.5:
        says32.append("read as 16-bit, channels zig-zag between two signals from sample to sample")
    says16 = r32 >= 0.001 and r16 <= r32 / 10 and counts.whole >= 0.9 * j32
    looked = f"{counts.pairs * 4 // 1024} KiB looked at in {len(starts)} stretch(es) over the data"
    if says32 and not says16:
        return 4, f"32-bit ({'; '.join(says32)}; {looked})"
    if says16 and not says32:
        return 2, f"16-bit ({jumps}; {looked})"
    why = "neither reading is clearly wrong" if not says32 else "the evidence conflicts"
    return None, f"{why}: {jumps}; {looked}"
