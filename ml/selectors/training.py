"""Training run reads, scoped as dataset versions are (``ml.selectors.datasets``).

The project's owner and staff see a project's runs and download their artefacts;
auditors read runs (status, metrics, plots, group tables) but download neither weights
nor predictions; annotators and other researchers see none of it ("not found").
"""

from django.db.models import QuerySet

from annotation import selectors as annotation_selectors
from annotation.models import Project
from core.errors import NotFound, PermissionDenied
from core.models import User
from ml.models import TrainingRun

# Heavy columns a list never needs.
LIST_DEFERRED = ("metrics", "manifest")
# Artefacts an auditor may read: summaries, no weights, no per-item predictions.
AUDITOR_FILES = ("manifest.json", "metrics.json", "group_metrics.csv", "annotator_groups.csv")
AUDITOR_FOLDERS = ("plots/",)


def training_runs_for(*, user: User, project_id: int) -> tuple[Project, QuerySet[TrainingRun]]:
    """The project (owner, auditors, staff; 404 otherwise) and its runs, newest first."""
    project = annotation_selectors.project_readable_by_staff_role(user=user, project_id=project_id)
    runs = (
        TrainingRun.objects.filter(project=project)
        .select_related("dataset_version")
        .defer(*LIST_DEFERRED, *(f"dataset_version__{f}" for f in ("manifest", "membership")))
        .order_by("-created_at", "-pk")
    )
    return project, runs


def training_runs_of_version(*, version_id: int) -> QuerySet[TrainingRun]:
    """A version's runs, newest first (the caller has checked the version is readable)."""
    return (
        TrainingRun.objects.filter(dataset_version_id=version_id)
        .defer(*LIST_DEFERRED)
        .order_by("-created_at", "-pk")
    )


def training_run_get(*, user: User, run_id: int) -> TrainingRun:
    """One run, if the user may read its project (404 otherwise)."""
    run = (
        TrainingRun.objects.select_related(
            "project", "project__owner", "created_by", "dataset_version"
        )
        .defer("dataset_version__membership")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound("No such training run.")
    annotation_selectors.project_readable_by_staff_role(user=user, project_id=run.project_id)
    return run


def training_run_manage(*, user: User, run_id: int) -> TrainingRun:
    """A run the user may cancel or download entirely (owner, staff; 403 for auditors)."""
    run = training_run_get(user=user, run_id=run_id)
    if not run.project.is_managed_by(user):
        raise PermissionDenied(
            "Auditors read a run's metrics and plots; its weights and predictions are "
            "downloaded by the project's owner.",
            code="download_not_allowed",
        )
    return run


def training_file_readable(*, user: User, run: TrainingRun, path: str) -> bool:
    """Whether ``user`` (who can read ``run``) may read the artefact ``path``."""
    if run.project.is_managed_by(user):
        return True
    return path in AUDITOR_FILES or path.startswith(AUDITOR_FOLDERS)


def training_runs_on_versions(*, version_ids: list[int]) -> list[TrainingRun]:
    """The runs trained on any of these versions (for a takedown's ``affected`` list)."""
    return list(
        TrainingRun.objects.filter(dataset_version_id__in=version_ids)
        .only("pk", "dataset_version_id")
        .order_by("pk")
    )
