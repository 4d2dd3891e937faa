"""Whether a data set plugin can be sent to worker processes (``--workers`` > 1).

Nothing is unpickled: objects are only pickled, the way multiprocessing does, to find what fails.
"""

from __future__ import annotations

from typing import Any

from sd_core.errors import PluginError, SdError


def _pickle_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be sent to a worker process (pickled the way multiprocessing does),
    naming the attribute at fault where one is; None when it can. Nothing is unpickled."""
    from multiprocessing.reduction import ForkingPickler

    from sd_core.plugins.checks import describe_exception

    try:
        ForkingPickler.dumps(obj)
        return None
    except Exception as exc:
        problem = describe_exception(exc)
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for attr, value in attrs.items():
            try:
                ForkingPickler.dumps(value)
            except Exception as exc:
                return f"attribute {attr!r}: {describe_exception(exc)}"
    return problem


def check_picklable(dataset: Any, subjects: Any = (), plugin: str | None = None) -> None:
    """Raise :class:`PluginError` when ``dataset`` (a DatasetPlugin), or one of ``subjects``,
    cannot be sent to worker processes, naming the plugin, the data set and what is at fault.

    Call it before starting a process pool (``--workers`` > 1). ``plugin`` defaults to the
    plugin that registered the data set.
    """
    from sd_core.plugins.registry import get_registry

    name = getattr(dataset, "name", "?")
    if plugin is None:
        try:
            plugin = get_registry().owner("sd_datasets", name)
        except (KeyError, SdError):
            plugin = type(dataset).__module__
    fix = "use --workers 1, or keep lambdas, open files and other unpicklable objects out of"
    problem = _pickle_problem(dataset)
    if problem is not None:
        raise PluginError(f"data set {name!r} of plugin {plugin!r} cannot be sent to worker processes "
                          f"({problem}); {fix} the DatasetPlugin's attributes")
    for subject in subjects:
        problem = _pickle_problem(subject)
        if problem is not None:
            raise PluginError(
                f"subject {getattr(subject, 'id', '?')!r} of data set {name!r} (plugin {plugin!r}) "
                f"cannot be sent to worker processes ({problem}); {fix} its labels and recordings"
            )
