"""sd plugin: classifier backbones for spectrogram images."""

__version__ = "0.1.0"
