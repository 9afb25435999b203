"""Celery tasks of the ml app. Dataset builds run on the ``default`` queue as jobs of
``core.jobs`` (one lease, retry and outbox mechanism); training and probes, later, on
``gpu``. The work is imported inside the task, so registering it (every process does,
from ``MlConfig.ready``) loads none of pandas, pyarrow or datasketch."""

from core.jobs import JobRun, job_task
from ml.models import DatasetVersion
from ml.task_names import DATASET_BUILD_TIME_LIMIT_S, DATASET_VERSION_BUILD_TASK


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
