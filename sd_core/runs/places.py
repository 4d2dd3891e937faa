"""Where sd may write an output folder: the one rule ``sd generate``, ``sd meta build`` and
``sd preprocess`` share.

An output folder is refused when it is the home folder itself, when it is or lies inside a
training or diffusion run folder, or a data set of another kind (processed, generated, meta),
and, for commands that make a new folder, when it exists, is not empty, and sd did not create
it (no ``.sd/`` record).  No file is lost by writing there, but nobody means to spread a data
set among ``.ssh`` and ``.bashrc``, or inside the run it was generated from.
"""

from __future__ import annotations

from pathlib import Path

from sd_core.errors import SdError
from sd_core.runs.owned import STATE_DIR

#: a folder holding these is a data set of that kind
DATA_MARKERS = {"preprocess.json": "a processed data set", "generation.json": "a generated data set",
                "meta.json": "a meta data set"}


def run_kind(folder: Path) -> str | None:
    """"a training run" / "a diffusion run" when ``folder`` is one (its state.json with its
    run.json or model.json), else None."""
    if not (folder / "state.json").is_file():
        return None
    if (folder / "model.json").is_file():
        return "a diffusion run"
    if (folder / "run.json").is_file():
        return "a training run"
    return None


def check_output_place(out: Path, own: str, fresh: bool = True) -> None:
    """Refuse ``out`` as an output folder of kind ``own`` (a key of :data:`DATA_MARKERS`, the
    marker this command writes there) by the module's rule; ``fresh``: the command makes a new
    folder, so a non-empty one sd did not create is refused too."""
    out = Path(out)
    res = out.resolve()
    try:
        home = Path.home().resolve()
    except (RuntimeError, KeyError):  # no home folder known
        home = None
    if res == home:
        raise SdError(f"output folder {out} is your home folder; choose a folder of its own for sd's output")
    for folder in (res, *res.parents):
        kind = run_kind(folder)
        if kind:
            raise SdError(f"output folder {out} {'is' if folder == res else 'lies inside'} {kind} ({folder}); "
                          "choose a folder outside it")
        for marker, what in DATA_MARKERS.items():
            if (folder / marker).is_file() and not (folder == res and marker == own):
                where = "is" if folder == res else "lies inside"
                raise SdError(f"output folder {out} {where} {what} ({folder / marker}); choose another folder")
    ours = (res / STATE_DIR).is_dir() or (res / own).is_file()  # (an older sd wrote no .sd/)
    if fresh and res.is_dir() and not ours and any(res.iterdir()):
        raise SdError(f"output folder {out} is not empty and sd did not create it; choose a new or empty folder")
