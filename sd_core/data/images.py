"""A torch dataset over processed rows: image, per-task targets and the metadata row.

Images are 8-bit grey PNGs of the processed layout. They are returned as float32 tensors of
shape (1, S, S) scaled to [-1, 1] (``pixel / 127.5 - 1``), resized to ``image_size`` when it
differs from the stored size. When the decoded images fit in ``cache_mb`` they are decoded once
(in threads) and kept as uint8, so a training step costs an index, not a PNG decode.

``__getitems__`` returns a whole collated batch (torch's DataLoader uses it when present), a
:class:`Batch`: ``batch["image"]``, ``batch["targets"]``, ``batch["index"]`` are the collated
fields, and as a sequence it holds the samples that ``dataset[i]`` gives, which is what torch's
default collate expects, so a plain ``DataLoader(dataset, batch_size=8)`` works; with
:func:`batch_collate` as ``collate_fn`` the collated fields pass through without a copy.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from sd_core.data.sources import image_path
from sd_core.data.tasks import ResolvedTask
from sd_core.errors import DatasetError
from sd_core.plugins.specs import REGRESSION


def load_image(row: Mapping[str, Any], size: int | None) -> np.ndarray:
    """One image as uint8 (S, S); resized with antialiasing when ``size`` differs."""
    path = image_path(row)
    try:
        with Image.open(path) as im:
            im = im.convert("L")
            if size and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR, reducing_gap=None)
            return np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image {path} is missing (listed in the metadata)") from None
    except OSError as exc:
        raise DatasetError(f"image {path} cannot be read ({exc})") from None


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float32 in [-1, 1]."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


class ProcessedImages(torch.utils.data.Dataset):
    """Rows of one or several processed folders with their targets.

    rows:        metadata rows (with ``_root``), see :mod:`sd_core.data.sources`.
    tasks:       resolved tasks; targets are class indices (-1 = missing) or standardised
                 floats (NaN = missing).
    image_size:  S; 0 or None keeps the stored size (all images must then share it).
    cache_mb:    decode everything up front when it fits; 0 disables the cache.
    """

    def __init__(self, rows: Sequence[dict], tasks: Sequence[ResolvedTask], image_size: int | None = None,
                 cache_mb: float = 2048, threads: int = 4) -> None:
        if not rows:
            raise DatasetError("no rows to read")
        self.rows = list(rows)
        self.tasks = list(tasks)
        first = load_image(self.rows[0], None)
        self.stored_size = first.shape[0]
        self.size = int(image_size) if image_size else self.stored_size
        self.targets: dict[str, torch.Tensor] = {}
        for t in self.tasks:
            values = [t.target(r) for r in self.rows]
            if t.kind == REGRESSION:
                v = torch.tensor(values, dtype=torch.float32)
                self.targets[t.name] = (v - t.mean) / t.std
            else:
                self.targets[t.name] = torch.tensor(values, dtype=torch.long)
        self.cache: torch.Tensor | None = None
        need_mb = len(self.rows) * self.size * self.size / 2**20
        if cache_mb and need_mb <= cache_mb:
            self.cache = self._decode_all(threads)

    def _decode_all(self, threads: int) -> torch.Tensor:
        out = np.empty((len(self.rows), 1, self.size, self.size), dtype=np.uint8)

        def work(i: int) -> None:
            img = load_image(self.rows[i], self.size)
            if img.shape != (self.size, self.size):
                raise DatasetError(f"image {image_path(self.rows[i])} is {img.shape[1]}×{img.shape[0]}, "
                                   f"not {self.size}×{self.size}; set image_size to resize")
            out[i, 0] = img

        with ThreadPoolExecutor(max(1, threads)) as pool:
            list(pool.map(work, range(len(self.rows))))
        return torch.from_numpy(out)

    def __len__(self) -> int:
        return len(self.rows)

    def images_uint8(self, indices: Sequence[int]) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[torch.as_tensor(indices, dtype=torch.long)]
        return torch.from_numpy(np.stack([load_image(self.rows[i], self.size) for i in indices])[:, None])

    @property
    def columns(self) -> list[str]:
        """The metadata columns of the rows (union over the rows, in first-seen order)."""
        if "_columns" not in self.__dict__:
            self._columns = list(dict.fromkeys(k for r in self.rows for k in r if not k.startswith("_")))
        return self._columns

    def row(self, i: int) -> dict[str, str]:
        """Metadata row ``i`` with every column of :attr:`columns` ("" where it has none), so that
        the rows of one batch share their keys (torch's default collate needs that)."""
        return _public(self.rows[i], self.columns)

    def __getitem__(self, i: int) -> dict[str, Any]:
        i = range(len(self.rows))[i]  # negative indices; IndexError past the end
        return {"image": to_float(self.images_uint8([i]))[0],
                "targets": {k: v[i] for k, v in self.targets.items()},
                "row": self.row(i),
                "index": i}

    def __getitems__(self, indices: Sequence[int]) -> "Batch":
        indices = [int(i) for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.long)
        return Batch({"image": to_float(self.images_uint8(indices)),
                      "targets": {k: v[idx] for k, v in self.targets.items()},
                      "index": idx}, [self.rows[i] for i in indices], self.columns)


def _public(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, str]:
    return {c: "" if row.get(c) is None else row[c] for c in columns}


class Batch(SequenceABC):
    """A collated batch that is also the sequence of its samples.

    ``batch["image"]`` (B, 1, S, S), ``batch["targets"]`` ({task: (B,)}) and ``batch["index"]``
    (B,) are the collated fields (what sd's loops read); ``batch[j]`` (an integer) is the j-th
    sample as ``dataset[i]`` gives it, views of the collated tensors plus its metadata row.
    """

    def __init__(self, fields: dict[str, Any], rows: Sequence[Mapping[str, Any]],
                 columns: Sequence[str]) -> None:
        self.fields = fields
        self.rows = rows  # the dataset's rows, made public (see ProcessedImages.row) on access
        self.columns = columns

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.fields[key]
        if isinstance(key, slice):
            return [self[j] for j in range(len(self))[key]]
        j = range(len(self))[key]
        f = self.fields
        return {"image": f["image"][j], "targets": {k: v[j] for k, v in f["targets"].items()},
                "row": _public(self.rows[j], self.columns), "index": int(f["index"][j])}

    def __contains__(self, key) -> bool:
        return key in self.fields

    def keys(self):
        return self.fields.keys()

    def items(self):
        return self.fields.items()


def batch_collate(batch: Any) -> Any:
    """collate_fn for a loader over :class:`ProcessedImages`: batches arrive collated."""
    if isinstance(batch, Batch):
        return batch.fields
    if isinstance(batch, list):  # a loader without batched fetching
        return {"image": torch.stack([b["image"] for b in batch]),
                "targets": {k: torch.stack([b["targets"][k] for b in batch]) for k in batch[0]["targets"]},
                "index": torch.tensor([b["index"] for b in batch])}
    return batch


def is_missing(target: torch.Tensor) -> torch.Tensor:
    """Mask of rows without a target (class -1 or NaN)."""
    if target.dtype.is_floating_point:
        return torch.isnan(target)
    return target < 0


__all__ = ["ProcessedImages", "Batch", "batch_collate", "load_image", "to_float", "is_missing"]
