"""The plugin machinery and contract.

``registry``   finding and loading plugins (entry-point group ``sd``), :func:`get_registry`
``hookspecs``  the hooks a plugin may implement
``specs``      what hooks return: tasks, options, backbones, metrics, diffusion model kinds
``dataset``    the data-set plugin contract: :class:`~sd_core.plugins.dataset.DatasetPlugin`
``captions``   the plain-sentence captions of metadata rows
``checks``     validation of what plugins return, naming the plugin in every message
``picklable``  the check that a data set can be sent to worker processes

Plugin authors import the public faces: ``sd_core.hookimpl``, ``sd_core.dataset`` and
``sd_core.specs``. This package re-exports the registry's names, as the former module did.
"""

from sd_core.plugins.checks import (
    HOOK_ITEM_TYPES,
    check_hook_result,
    describe_exception,
    preprocess_defaults_problem,
    task_columns_problem,
)
from sd_core.plugins.picklable import check_picklable
from sd_core.plugins.registry import (
    BUILTIN_MODULE,
    CORE_NAME,
    ENTRY_POINT_GROUP,
    ENV_LOAD,
    UNIQUE_NAMES,
    PluginInfo,
    Registry,
    get_registry,
    normalize_dist_name,
    reset_registry,
    unknown_name,
)

__all__ = [
    "BUILTIN_MODULE", "CORE_NAME", "ENTRY_POINT_GROUP", "ENV_LOAD", "HOOK_ITEM_TYPES", "UNIQUE_NAMES",
    "PluginInfo", "Registry", "check_hook_result", "check_picklable", "describe_exception",
    "get_registry", "normalize_dist_name", "preprocess_defaults_problem", "reset_registry",
    "task_columns_problem", "unknown_name",
]
