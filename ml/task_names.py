"""Registered names and limits of the ml app's Celery tasks (constants only; see
``annotation.task_names`` for why)."""

DATASET_VERSION_BUILD_TASK = "ml.dataset_version_build"
DATASET_BUILD_TIME_LIMIT_S = 2 * 3600
TRAINING_RUN_TASK = "ml.training_run"
TRAINING_TIME_LIMIT_S = 6 * 3600
