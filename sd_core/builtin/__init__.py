"""The core's own contributions (metrics, set metrics, feature extractors, diffusion model kinds),
registered like any plugin under the name ``sd-core``: :mod:`sd_core.builtin.hooks`.

The registry loads it by name (``sd_core.plugins.registry.BUILTIN_MODULE``), as simonw/llm loads
its default plugins, because these hooks reach into the stages above the plugin machinery.
"""
