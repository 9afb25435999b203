"""Item reads: a project's items and import batches, and one item for a user who may see it.

An item is visible to whoever manages its project, to auditors, and to an annotator it was
assigned to (unless that assignment was cancelled); to anyone else it is a 404.
"""

from django.db.models import QuerySet

from annotation.models import Assignment, ImportBatch, Item, Project
from core.errors import NotFound
from core.models import User

ITEM_ORDERING_FIELDS = ("id", "external_id", "created_at", "slots_taken")


def item_list(*, project: Project, ordering: str | None = None) -> QuerySet[Item]:
    queryset = Item.objects.filter(project=project).select_related("source")
    if ordering and ordering.lstrip("-") in ITEM_ORDERING_FIELDS:
        return queryset.order_by(ordering)
    return queryset.order_by("id")


def item_get_for(*, user: User, item_id: int) -> Item:
    """An item this user may see: researcher owner, auditor, staff, or its annotator."""
    item = Item.objects.select_related("project", "source").filter(pk=item_id).first()
    if item is None:
        raise NotFound("No such item.")
    project = item.project
    if user.is_auditor or project.is_managed_by(user):
        return item
    if user.is_annotator and (
        Assignment.objects.filter(item=item, annotator=user)
        .exclude(status=Assignment.Status.CANCELLED)
        .exists()
    ):
        return item
    raise NotFound("No such item.")


def item_get_by_external_id(*, project: Project, external_id: str) -> Item:
    """An item of a project the caller already may read, by the researcher's own id."""
    item = (
        Item.objects.select_related("project")
        .filter(project=project, external_id=external_id.strip())
        .first()
    )
    if item is None:
        raise NotFound("No item of this project has that external id.")
    return item


def import_batch_list(*, project: Project) -> QuerySet[ImportBatch]:
    return (
        ImportBatch.objects.filter(project=project)
        .select_related("created_by")
        .order_by("-created_at")
    )
