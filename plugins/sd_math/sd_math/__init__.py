"""sd plugin for PhysioNet "EEG During Mental Arithmetic Tasks" (EEGMAT)."""

__version__ = "0.1.0"
