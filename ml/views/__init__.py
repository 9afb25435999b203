"""The ml app's pages: dataset versions (``datasets``) and training runs (``training``)."""

from ml.views.datasets import (
    dataset_detail,
    dataset_list,
    dataset_new,
    dataset_rebuild,
    dataset_retry,
)
from ml.views.training import (
    training_cancel,
    training_detail,
    training_list,
    training_new,
)

__all__ = [
    "dataset_detail",
    "dataset_list",
    "dataset_new",
    "dataset_rebuild",
    "dataset_retry",
    "training_cancel",
    "training_detail",
    "training_list",
    "training_new",
]
