"""Experiment files (``sd train cfg.toml``, ``sd diffusion train cfg.toml``).

An experiment file has fixed sections, each validated against a schema of :class:`Key` (the
same checks as ``sd.toml``: unknown keys, wrong types and bad choices name the file, the key and
the allowed values). Sub-tables such as ``[model.options]`` are allowed only where the schema
has a key of type ``dict``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sd_core.config.schema import Key, did_you_mean, option_keys, raise_problems, table_problems, validate_table
from sd_core.config.toml import dumps, read_toml
from sd_core.errors import ConfigError


@dataclass
class Experiment:
    """A validated experiment file with defaults filled in."""

    source: Path
    sections: dict[str, dict[str, Any]]

    def __getitem__(self, section: str) -> dict[str, Any]:
        return self.sections[section]

    @property
    def base(self) -> Path:
        return self.source.parent

    def path(self, value: str) -> Path:
        """A path from the file, relative to the file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base / p).resolve()

    def error(self, section: str, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: [{section}] {key} {message}")

    def dumps(self) -> str:
        return dumps(self.sections)


#: What an experiment given as a mapping (``sd_core.api.train({...})``) is called in messages;
#: its relative paths are relative to the working folder, its default run folder runs/<stem>.
MAPPING_SOURCE = "python-experiment.toml"


def load_experiment(path: str | Path | Mapping[str, Any], schema: Mapping[str, Mapping[str, Key]],
                    required: Mapping[str, tuple[str, ...]] = {}) -> Experiment:
    """Read and validate an experiment file against ``schema`` (section → keys).

    ``path`` may also be the file's content as a mapping of sections (the Python API), checked
    the same way."""
    if isinstance(path, Mapping):
        raw = copy.deepcopy(dict(path))
        path = Path.cwd() / MAPPING_SOURCE
    else:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"experiment file {path} does not exist")
        raw = read_toml(path)
    src = str(path)
    sections = {sec: {k: copy.deepcopy(key.default) for k, key in keys.items()}
                for sec, keys in schema.items()}
    problems: list[str] = []
    for section, table in raw.items():
        if section not in schema:
            problems.append(f"{src}: unknown section [{section}]; allowed: {', '.join(schema)}"
                            + did_you_mean(section, list(schema)))
            continue
        if not isinstance(table, dict):
            problems.append(f"{src}: {section} must be a table ([{section}])")
            continue
        problems += table_problems(section, table, schema[section], src)
        sections[section].update(copy.deepcopy(table))
    for section, keys in required.items():
        for k in keys:
            if not isinstance(raw.get(section), dict) or k not in raw[section]:
                problems.append(f"{src}: [{section}] {k} is required ({schema[section][k].help})")
    raise_problems(problems)  # every problem of the file at once
    return Experiment(path.resolve(), sections)


def validate_options(src: str, where: str, given: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Options of a plugin object (``OptionSpec`` per name) with defaults filled in."""
    schema = option_keys(options)
    validate_table(where, given, schema, src)
    out = {k: copy.deepcopy(o.default) for k, o in options.items()}
    out.update(copy.deepcopy(dict(given)))
    return out


def starter_experiment(title: str, schema: Mapping[str, Mapping[str, Key]],
                       examples: Mapping[str, Mapping[str, Any]] = {}) -> str:
    """A commented experiment file: every key with its default and meaning.

    ``examples`` gives values for keys that must be set (they are written uncommented).
    """
    from sd_core.config.toml import toml_value

    out = [f"# {title}", "# Every key with its default; uncomment what you change.", ""]
    for section, keys in schema.items():
        out.append(f"[{section}]")
        for name, key in keys.items():
            choices = f" ({' | '.join(map(str, key.choices))})" if key.choices else ""
            out.append(f"# {key.help}{choices}")
            if name in examples.get(section, {}):
                out.append(f"{name} = {toml_value(examples[section][name])}")
            else:
                out.append(f"# {name} = {toml_value(key.default)}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
