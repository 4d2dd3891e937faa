"""sd plugin for OpenNeuro ds004584: resting-state EEG in Parkinson's disease."""

__version__ = "0.1.0"
