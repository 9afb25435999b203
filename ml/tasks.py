"""Celery tasks of the ml app, jobs of ``core.jobs`` (one lease, retry and outbox
mechanism): dataset builds on the ``default`` queue, training runs on ``gpu``. The work is
imported inside the task, so registering it (every process does, from ``MlConfig.ready``)
loads none of pandas, pyarrow, datasketch or torch."""

from core.jobs import JobRun, job_task
from ml.models import DatasetVersion, TrainingRun
from ml.task_names import (
    DATASET_BUILD_TIME_LIMIT_S,
    DATASET_VERSION_BUILD_TASK,
    TRAINING_RUN_TASK,
    TRAINING_TIME_LIMIT_S,
)


@job_task(
    model=DatasetVersion,
    name=DATASET_VERSION_BUILD_TASK,
    time_limit_s=DATASET_BUILD_TIME_LIMIT_S,
    housekeeping="ml.build.run.dataset_files_sweep",
)
def dataset_version_build_task(run: JobRun[DatasetVersion]) -> None:
    """Build one dataset version: read, aggregate, split, write, publish."""
    from ml.build.run import dataset_version_execute

    dataset_version_execute(run)


@job_task(
    model=TrainingRun,
    name=TRAINING_RUN_TASK,
    time_limit_s=TRAINING_TIME_LIMIT_S,
    queue="gpu",
    housekeeping="ml.training.run.training_files_sweep",
)
def training_run_task(run: JobRun[TrainingRun]) -> None:
    """Train one baseline on a dataset version, evaluate it and publish its artefacts."""
    from ml.training.run import training_run_execute

    training_run_execute(run)
