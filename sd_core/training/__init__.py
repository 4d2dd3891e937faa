"""Multi-task classifier training (``sd train cfg.toml``) and evaluation of saved runs.

- ``settings``: the experiment file's schema and its resolved values.
- ``model``: a backbone from the registry with one head per task.
- ``losses``: masked per-task losses; ``metrics``: per-task metrics from metric plugins.
- ``checkpoint``: run folders, checkpoints (safetensors) and resume state.
- ``components``: what a run is built from (data, sampling groups, optimizer, schedule).
- ``loop``: the training loop on accelerate; ``evaluate``: evaluation of a run on a split.
- ``report``: curves and tables.
"""
