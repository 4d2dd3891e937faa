"""What every command that writes shares: files, run folders, state, progress and console.

``files``       atomic writes (write, then rename) and reading text with clear errors
``owned``       the manifest of files sd wrote in a folder: what it may replace or delete
``safe_state``  resumable training state as JSON + safetensors (never pickle)
``tracking``    experiment trackers through accelerate (TensorBoard, W&B, MLflow, ...)
``progress``    progress bars: rich on a terminal, plain lines in logs
``console``     the rich consoles and tables results are printed with
"""
