"""The generic preprocessing pipeline: raw recordings → spectrogram PNGs + metadata CSVs.

``layout``  output folder structure, metadata columns, state files, overwrite safety
``params``  the parameters of a run and their fingerprint (what a rerun must match)
``subject`` one subject's recordings → images and metadata rows (runs in worker processes)
``runner``  discovery, splits, shards, workers, resume, merge, progress and summary
"""

from sd_core.preprocess.runner import PreprocessResult, merge_dataset, preprocess_dataset

__all__ = ["preprocess_dataset", "merge_dataset", "PreprocessResult"]
