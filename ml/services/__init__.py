"""The ml app's writes: dataset versions (``datasets``) and training runs (``training``)."""

from ml.services.datasets import (
    DryRun,
    dataset_version_build_now,
    dataset_version_create,
    dataset_version_dry_run,
    dataset_version_rebuild,
    dataset_version_retry,
    dataset_version_revoke,
)
from ml.services.training import (
    training_params_clean,
    training_run_cancel,
    training_run_create,
    training_run_train_now,
)

__all__ = [
    "DryRun",
    "dataset_version_build_now",
    "dataset_version_create",
    "dataset_version_dry_run",
    "dataset_version_rebuild",
    "dataset_version_retry",
    "dataset_version_revoke",
    "training_params_clean",
    "training_run_cancel",
    "training_run_create",
    "training_run_train_now",
]
