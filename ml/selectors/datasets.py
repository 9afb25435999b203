"""Dataset version reads, scoped to who may see them.

The project's owner and staff see and download a project's versions; auditors read them
(status, counts, manifests) but download no data; annotators and other researchers see
none of it: a version they may not see is "not found".
"""

from django.db.models import QuerySet

from annotation import selectors as annotation_selectors
from annotation.models import Project
from core.errors import NotFound, PermissionDenied
from core.models import User
from ml.membership import Comparison, Membership, compare
from ml.models import DatasetVersion

# Heavy columns a list never needs.
LIST_DEFERRED = ("manifest", "membership", "contamination")


def dataset_versions_for(
    *, user: User, project_id: int
) -> tuple[Project, QuerySet[DatasetVersion]]:
    """The project (owner, auditors, staff; 404 otherwise) and its versions, newest first."""
    project = annotation_selectors.project_readable_by_staff_role(user=user, project_id=project_id)
    versions = (
        DatasetVersion.objects.filter(project=project)
        .defer(*LIST_DEFERRED)
        .order_by("-created_at", "-pk")
    )
    return project, versions


def dataset_version_get(*, user: User, version_id: int) -> DatasetVersion:
    """One version, if the user may read its project (404 otherwise)."""
    version = (
        DatasetVersion.objects.select_related("project", "project__owner", "created_by")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        raise NotFound("No such dataset version.")
    # Raises NotFound for a project the user may not read.
    annotation_selectors.project_readable_by_staff_role(user=user, project_id=version.project_id)
    return version


def dataset_version_for_download(*, user: User, version_id: int) -> DatasetVersion:
    """A version whose files the user may download: the owner's and staff's only."""
    version = dataset_version_get(user=user, version_id=version_id)
    if not version.project.is_managed_by(user):
        raise PermissionDenied(
            "Auditors read a version's manifest and counts; its data is downloaded by the "
            "project's owner.",
            code="download_not_allowed",
        )
    return version


def dataset_version_manage(*, user: User, version_id: int) -> DatasetVersion:
    """A version the user may rebuild, retry or revoke (owner, staff; 404 for others who
    cannot read it, 403 for auditors)."""
    return dataset_version_for_download(user=user, version_id=version_id)


def dataset_versions_compare(*, old: DatasetVersion, new: DatasetVersion) -> Comparison:
    return compare(
        Membership.from_bytes(bytes(old.membership)), Membership.from_bytes(bytes(new.membership))
    )


def dataset_versions_holding(*, project_id: int, item_ids: set[int]) -> list[DatasetVersion]:
    """The built, unrevoked versions of a project that hold any of ``item_ids``."""
    found = []
    for version in DatasetVersion.objects.filter(
        project_id=project_id, status=DatasetVersion.Status.DONE, revoked_at=None
    ).order_by("pk"):
        membership = Membership.from_bytes(bytes(version.membership))
        if any(membership.holds(pk) for pk in item_ids):
            found.append(version)
    return found
