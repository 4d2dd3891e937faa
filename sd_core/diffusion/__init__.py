"""Conditional diffusion models of spectrograms (``sd diffusion train``, ``sd generate``).

- ``config``: the experiment-file schema of ``sd diffusion train``.
- ``conditioning``: labels → the UNet's class-conditioning vector (with null tokens for
  classifier-free guidance), saved as safetensors + JSON.
- ``kinds``: the built-in model kinds (``unet``, ``dit``) behind the ``sd_diffusion_models`` hook.
- ``model``: the trainable (network + conditioning) module, loading a run of any kind.
- ``trainrun``: the set-up of a training run (folder checks, accelerator, data, model, EMA, resume);
  ``train``: the training loop under accelerate (EMA, checkpoints, resume).
- ``sampling``: the guided sampling loop over diffusers' schedulers.
- ``generate``: synthetic data sets in the processed layout.
- ``figures``: sample grids and the loss curve.
- ``demo``: the diffusion stage of ``sd demo``.

Nothing here is imported by ``sd --help``; modules import torch and diffusers at top level.
"""
