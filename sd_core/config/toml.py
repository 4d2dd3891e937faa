"""Reading TOML files with clear errors, and writing the TOML of ``sd config show`` and ``sd init``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from sd_core.config.schema import SECTIONS
from sd_core.errors import ConfigError


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                          "TOML files are UTF-8: save it in that encoding") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text of a two-level mapping (``datasets`` nests one level deeper)."""
    lines: list[str] = []
    for section, table in data.items():
        if section == "datasets":
            for name, sub in table.items():
                lines.append(f"[datasets.{name}]")
                lines += [f"{k} = {toml_value(v)}" for k, v in sub.items()]
                lines.append("")
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)


def starter_text(datasets: Mapping[str, Any]) -> str:
    """A commented starter ``sd.toml``: every key with its default and meaning."""
    out = [
        "# sd project file. Found by --config PATH, else $SD_CONFIG, else ./sd.toml.",
        "# Relative paths are relative to this file's folder. Uncomment what you change.",
        "",
    ]
    for section, schema in SECTIONS.items():
        out.append(f"[{section}]")
        for name, key in schema.items():
            text = key.help + (f" ({' | '.join(key.choices)})" if key.choices else "")
            out += [f"# {line}" for line in textwrap.wrap(text, 96)]
            out.append(f"{name} = {toml_value(key.default)}")
        out.append("")
    out.append("# Per data set: raw/output folders, channels, preprocessing overrides, plugin options.")
    for name, plugin in datasets.items():
        out.append(f"# [datasets.{name}]  — {getattr(plugin, 'title', '')}".rstrip(" —"))
        out.append(f'# raw = "/path/to/{name}"')
        for opt, spec in dict(getattr(plugin, "options", {}) or {}).items():
            out.append(f"# {opt} = {toml_value(spec.default)}  # {spec.help}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
