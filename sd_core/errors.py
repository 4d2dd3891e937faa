"""Errors a user can cause. The CLI prints them in one or two lines and exits non-zero."""


class SdError(Exception):
    """Base class for every error that is the user's to fix (bad config, missing file, ...).

    The CLI catches these and prints ``error: <message>`` without a traceback.
    """

    exit_code = 1


class ConfigError(SdError):
    """A configuration file or option is invalid."""


class PluginError(SdError):
    """Plugins disagree (for example two plugins register the same name) or one is unknown."""


class DatasetError(SdError):
    """Raw data is missing or unreadable."""
