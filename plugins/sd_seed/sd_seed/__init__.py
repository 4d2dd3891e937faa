"""sd plugin for SEED-V: emotion EEG recorded with Neuroscan."""

__version__ = "0.1.0"
