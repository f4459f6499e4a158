"""A draft's training recipe (training settings, data preparation, augmentation) against cnnkit's
defaults (cnnkit.specs): "From scratch" starts from the defaults, and Build says which recipe a
draft keeps (a preset's, an upload's) instead of passing it on to Train silently."""

from __future__ import annotations

import dataclasses

from cnnkit.specs import AugmentationSpec, DatasetSpec, ExperimentSpec, TrainingSpec
from cnnkit.views.editing import AUGMENTATION_FIELDS, TRAINING_FIELDS, spec_value


def default_recipe(spec: ExperimentSpec) -> ExperimentSpec:
    """`spec` with the default training settings, data preparation and no augmentation; its layers,
    dataset, output, baseline and name stay."""
    return dataclasses.replace(spec, dataset=DatasetSpec(spec.dataset.name), training=TrainingSpec(),
                               augmentation=AugmentationSpec())


def _shown(value) -> str:
    return "all" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def recipe_changes(spec: ExperimentSpec) -> list[str]:
    """The settings of the Train page where `spec` is not the default, as "Label value" in the
    page's order: ["Epochs 10", "Validation split 0", "Normalization none"] for the Kruse preset."""
    default = default_recipe(spec)
    return [f"{field.label} {_shown(spec_value(spec, field.name))}" for field in (*TRAINING_FIELDS, *AUGMENTATION_FIELDS)
            if spec_value(spec, field.name) != spec_value(default, field.name)]
