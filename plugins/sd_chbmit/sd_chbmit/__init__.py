"""sd plugin for the CHB-MIT scalp EEG database (PhysioNet)."""

__version__ = "0.1.0"
