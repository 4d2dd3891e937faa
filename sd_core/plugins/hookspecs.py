"""The contract between ``sd`` and its plugins.

A plugin is an installed distribution that declares an entry point in the group ``sd``::

    [project.entry-points.sd]
    mydata = "sd_mydata.plugin"

The entry point names a module (or object) holding functions marked with
``sd_core.hookimpl`` whose names are the hooks below. Implement only the hooks you need.
Every hook returns a list; an empty list means "nothing from me".

Rules every plugin follows:

* Keep the module light: ``sd --help`` and the listing commands load every plugin, and must not
  import torch, mne or diffusers. Import heavy libraries inside the functions that use them
  (for example inside ``DatasetPlugin.read_raw`` or ``BackboneSpec.build``).
* Names are global: two plugins registering the same data set, the same task of one data set,
  the same backbone or the same metric is an error that names both plugins.
* A plugin that raises (or calls ``sys.exit``) while loading, or while a hook is called, is
  reported by name and left out; the other plugins keep working. So is a hook that returns
  anything but a list of the documented objects (instances, not classes; each with a name), and
  a plugin implementing a hook that does not exist (a misspelt ``sd_dataset``): mark a hook only
  newer versions of sd define with ``@hookimpl(optionalhook=True)``.

See ``docs/writing-a-dataset-plugin.md`` for a worked example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sd_core import hookspec

if TYPE_CHECKING:  # pragma: no cover
    import click

    from sd_core.plugins.dataset import DatasetPlugin
    from sd_core.plugins.specs import (
        BackboneSpec,
        DiffusionModelSpec,
        FeatureExtractorSpec,
        MetricSpec,
        SetMetricSpec,
        TaskSpec,
    )


@hookspec
def sd_datasets() -> list[DatasetPlugin]:
    """Dataset preprocessors: one :class:`sd_core.plugins.dataset.DatasetPlugin` per data set.

    A dataset plugin says where the subjects, recordings, labels and channels of its data set
    are, and how to label a window; the core does the rest (reading through MNE, resampling,
    windowing, spectrograms, splits, metadata, resume). The plugin's ``name`` is what users type
    (``sd preprocess --dataset <name>``) and the folder name of its processed output.
    """


@hookspec
def sd_tasks() -> list[TaskSpec]:
    """Label registries: the prediction tasks offered on data sets.

    Each :class:`sd_core.plugins.specs.TaskSpec` names its data set, so a plugin may add tasks to
    another plugin's data set (for example a combined task over existing metadata columns).
    A task is listed only while its data set is installed, and reads only that data set's
    ``DatasetPlugin.columns`` and the columns every row has (``sd_core.plugins.specs.ROW_COLUMNS``): a
    task reading another column is refused when plugins load, with a warning naming the plugin.
    """


@hookspec
def sd_backbones() -> list[BackboneSpec]:
    """Classifier backbones (:class:`sd_core.plugins.specs.BackboneSpec`).

    ``build(embedding_dim=..., image_size=..., **options)`` returns a ``torch.nn.Module`` mapping a
    ``(B, 1, R, R)`` float image batch to a ``(B, embedding_dim)`` embedding. Document every
    option in ``options`` so that ``sd backbones`` can show it and configs can be validated.
    """


@hookspec
def sd_diffusion_models() -> list[DiffusionModelSpec]:
    """Kinds of denoising network for ``sd diffusion train`` (:class:`sd_core.plugins.specs.DiffusionModelSpec`).

    An experiment chooses one with ``[model] kind = "<name>"`` and sets its options in ``[model]``;
    the core's training loop, conditioning, checkpoints, EMA, guidance, resume and ``sd generate``
    work for every kind. The core registers ``unet`` (a pixel-space UNet2DModel),
    ``latent-unet`` (a UNet2DConditionModel in an AutoencoderKL's latent space), ``stable-diffusion``
    (fine-tuning a local Stable Diffusion pipeline) and ``dit`` (a
    diffusion transformer, diffusers' SD3Transformer2DModel). Document every option in ``options``
    so that ``sd diffusion models`` can show it and experiment files can be validated.
    """


@hookspec
def sd_metrics() -> list[MetricSpec]:
    """Per-task evaluation metrics (:class:`sd_core.plugins.specs.MetricSpec`).

    The core registers accuracy, balanced accuracy, macro F1, AUROC, MAE and R² this way.
    """


@hookspec
def sd_feature_extractors() -> list[FeatureExtractorSpec]:
    """Feature spaces for judging generated data (:class:`sd_core.plugins.specs.FeatureExtractorSpec`).

    ``sd evaluate`` computes every set-level metric in every feature space. The core registers
    ``classifier`` (embeddings of a classifier trained on real data) and ``bandpower`` (mean
    log power per channel strip in the delta … gamma bands, read from the image rows).
    """


@hookspec
def sd_set_metrics() -> list[SetMetricSpec]:
    """Set-level metrics between real and generated features (:class:`sd_core.plugins.specs.SetMetricSpec`).

    The core registers ``fid``, ``kid`` (with its standard error) and ``prdc`` (precision,
    recall, density and coverage of k-nearest-neighbour manifolds, k = 5).
    """


@hookspec
def sd_cli_commands() -> list[click.Command]:
    """Extra ``click`` commands added to the ``sd`` command line.

    A command whose name the core already uses is ignored with a warning.
    """
