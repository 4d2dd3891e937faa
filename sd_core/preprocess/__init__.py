"""The generic preprocessing pipeline: raw recordings → spectrogram PNGs + metadata CSVs.

``layout``  output folder structure, metadata columns, state files, overwrite safety
``params``  the parameters of a run and their fingerprint (what a rerun must match)
``subject`` one subject's recordings → images and metadata rows (runs in worker processes)
``splits``  the subject → split assignment (deterministic, label-balanced, or pinned by a file)
``runner``  discovery, splits, shards, workers, resume, progress and summary
``merge``   the per-subject states merged into the metadata CSVs and ``preprocess.json``
"""

from sd_core.preprocess.runner import PreprocessResult, merge_dataset, preprocess_dataset

__all__ = ["preprocess_dataset", "merge_dataset", "PreprocessResult"]
