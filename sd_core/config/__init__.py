"""Configuration: the project file ``sd.toml`` and experiment files.

``schema``      the allowed keys (types, defaults, help, checks), table validation, did-you-mean
``toml``        reading TOML with clear errors; writing it for ``sd config show`` and ``sd init``
``project``     finding and resolving ``sd.toml`` (data roots, outputs, preprocessing defaults)
``experiment``  experiment files (``sd train cfg.toml``, ``sd diffusion train cfg.toml``)

``schema`` and ``toml`` know nothing of plugins; ``project`` asks the plugin registry about data
sets. The names below are the former module's, re-exported.
"""

from sd_core.config.project import DEFAULT_NAME, ENV_CONFIG, Config, find_config_file, load_config
from sd_core.config.schema import (
    DATASET,
    IMPROVED,
    PATHS,
    PREPROCESS,
    SECTIONS,
    Key,
    apply_preset,
    dataset_schema,
    defaults,
    did_you_mean,
    option_keys,
    raise_problems,
    table_problems,
    validate_table,
)
from sd_core.config.toml import dumps, read_toml, starter_text, toml_value

__all__ = [
    "DATASET", "DEFAULT_NAME", "ENV_CONFIG", "IMPROVED", "PATHS", "PREPROCESS", "SECTIONS", "Config", "Key",
    "apply_preset", "dataset_schema", "defaults", "did_you_mean", "dumps", "find_config_file", "load_config",
    "option_keys", "raise_problems", "read_toml", "starter_text", "table_problems", "toml_value",
    "validate_table",
]
