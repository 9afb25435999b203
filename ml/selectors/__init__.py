"""The ml app's reads: dataset versions (``datasets``) and training runs (``training``)."""

from ml.selectors.datasets import (
    dataset_version_for_download,
    dataset_version_get,
    dataset_version_manage,
    dataset_versions_compare,
    dataset_versions_for,
    dataset_versions_holding,
)
from ml.selectors.training import (
    training_file_readable,
    training_run_get,
    training_run_manage,
    training_runs_for,
    training_runs_of_version,
    training_runs_on_versions,
)

__all__ = [
    "dataset_version_for_download",
    "dataset_version_get",
    "dataset_version_manage",
    "dataset_versions_compare",
    "dataset_versions_for",
    "dataset_versions_holding",
    "training_file_readable",
    "training_run_get",
    "training_run_manage",
    "training_runs_for",
    "training_runs_of_version",
    "training_runs_on_versions",
]
