"""``RUN/model_index.json`` checked before diffusers reads it: nothing is imported from a run folder.

diffusers imports every component's library by the name ``model_index.json`` gives, and with
``trust_remote_code=True`` a module file found in a component's folder (``RUN/conditioning/
evil.py`` for ``"conditioning": ["evil", "Conditioning"]``) as well.  A run folder comes from
anyone (downloaded, shared by a colleague), so :func:`check_model_index` accepts only what
``sd diffusion train`` writes:

- ``_class_name`` is ``SpectrogramPipeline``;
- each component is one the pipeline takes, named ``[library, class]`` with the library
  ``diffusers`` or ``transformers`` (``conditioning``: sd's own ``Conditioning`` only), the
  class one that library has;
- no Python file lies in the run folder or in a component's folder;
- the scheduler config holds valid values (:mod:`sd_core.diffusion.run_config`).

Anything else is an :class:`SdError` naming the file and the key, raised before diffusers runs.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from sd_core.errors import SdError

MODEL_INDEX = "model_index.json"
PIPELINE_CLASS = "SpectrogramPipeline"
CONDITIONING = ("sd_core.diffusion.conditioning", "Conditioning")
COMPONENTS = ("conditioning", "scheduler", "unet", "transformer", "vae", "text_encoder", "tokenizer")
LIBRARIES = ("diffusers", "transformers")


def read_model_index(run: Path) -> dict:
    path = Path(run) / MODEL_INDEX
    if not path.is_file():
        raise SdError(f"{path}: not found (is {run} a finished sd diffusion run?)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SdError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(index, dict):
        raise SdError(f"{path}: expected a JSON object")
    return index


def check_model_index(run: Path) -> dict:
    """The run's model index, checked (see the module's documentation); returns it."""
    run = Path(run)
    path = run / MODEL_INDEX
    index = read_model_index(run)
    if index.get("_class_name") != PIPELINE_CLASS:
        raise SdError(f"{path}: _class_name must be {PIPELINE_CLASS!r}, not {index.get('_class_name')!r}")
    for key, value in index.items():
        if key.startswith("_"):
            continue
        if key not in COMPONENTS:
            raise SdError(f"{path}: unknown component {key!r} (allowed: {', '.join(COMPONENTS)})")
        _check_component(path, key, value)
        if (run / key).is_dir():
            _no_code(run / key, path)
    _no_code(run, path)
    scheduler = run / "scheduler" / "scheduler_config.json"
    if scheduler.is_file():
        from sd_core.diffusion.run_config import check_scheduler_config

        try:
            config = json.loads(scheduler.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SdError(f"{scheduler}: not valid JSON ({exc})") from None
        check_scheduler_config(config, scheduler)
    return index


def _check_component(path: Path, key: str, value) -> None:
    if value in ([None, None], (None, None)):
        return
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise SdError(f"{path}: {key} must be [library, class], not {value!r}")
    library, name = value
    if key == "conditioning":
        if tuple(value) != CONDITIONING:
            raise SdError(f"{path}: conditioning must be {list(CONDITIONING)}, not {value!r}")
        return
    if library not in LIBRARIES:
        raise SdError(f"{path}: {key} comes from {library!r}; a run's components come from "
                      f"{' or '.join(LIBRARIES)} (sd imports nothing from a run folder)")
    if not isinstance(getattr(importlib.import_module(library), name, None), type):
        raise SdError(f"{path}: {key}: {library} has no class {name!r}")


def _no_code(folder: Path, path: Path) -> None:
    code = sorted(p.name for p in folder.iterdir() if p.suffix in (".py", ".pyc", ".so") and p.is_file())
    if code:
        raise SdError(f"{path}: {folder} holds code ({', '.join(code)}); sd never imports code from a run folder")
