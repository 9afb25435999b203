"""Reads for the annotation campaign. Visibility is decided here, for lists and details.

Researchers see their own projects; auditors and staff see all projects read-only;
annotators see open projects (and ones they joined), their own assignments and labels,
never anyone else's.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from annotation.models import (
    Annotation,
    Assignment,
    Enrolment,
    ImportBatch,
    Item,
    Project,
    ProjectStatus,
)
from core.errors import NotFound
from core.models import User


def project_list_for(*, user: User) -> QuerySet[Project]:
    queryset = Project.objects.select_related("owner")
    if user.is_staff or user.is_auditor:
        return queryset.all()
    if user.is_researcher:
        return queryset.filter(owner=user)
    joined = Enrolment.objects.filter(project=OuterRef("pk"), annotator=user)
    return queryset.filter(Q(status=ProjectStatus.OPEN) | Exists(joined))


def project_get_for(*, user: User, project_id: int) -> Project:
    project = project_list_for(user=user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_managed_by(*, user: User, project_id: int) -> Project:
    """A project this user may change: its owner, or staff. 404 otherwise (no existence leak)."""
    queryset = Project.objects.all() if user.is_staff else Project.objects.filter(owner=user)
    project = queryset.filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_readable_by_staff_role(*, user: User, project_id: int) -> Project:
    """A project whose items and labels this user may read: owner, auditor or staff."""
    if not (user.is_staff or user.is_auditor or user.is_researcher):
        raise NotFound("No such project.")
    queryset = Project.objects.all() if (user.is_staff or user.is_auditor) else user.owned_projects
    project = queryset.filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


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
    if user.is_staff or user.is_auditor or (user.is_researcher and project.owner_id == user.pk):
        return item
    if user.is_annotator and (
        Assignment.objects.filter(item=item, annotator=user)
        .exclude(status=Assignment.Status.CANCELLED)
        .exists()
    ):
        return item
    raise NotFound("No such item.")


def annotation_list_for(*, user: User, project: Project) -> QuerySet[Annotation]:
    """Researchers and auditors: every label not withdrawn. Annotators: their own only."""
    queryset = Annotation.objects.filter(project=project).select_related("annotator", "item")
    if user.is_annotator and not user.is_staff:
        return queryset.filter(annotator=user).order_by("id")
    return queryset.filter(withdrawn=False).order_by("id")


def annotation_get_own(*, user: User, annotation_id: int) -> Annotation:
    annotation = (
        Annotation.objects.select_related("project", "item")
        .filter(pk=annotation_id, annotator=user)
        .first()
    )
    if annotation is None:
        raise NotFound("No such annotation.")
    return annotation


def annotations_for_analysis(*, project: Project) -> QuerySet[Annotation]:
    """The labels every analysis and export uses: withdrawn ones are never included."""
    return Annotation.objects.filter(project=project, withdrawn=False)


def assignment_get_own(*, user: User, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("item", "project")
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


def assignment_list_own(*, user: User, project: Project) -> QuerySet[Assignment]:
    return Assignment.objects.filter(project=project, annotator=user).order_by("-created_at")


def enrolment_get(*, project: Project, annotator: User) -> Enrolment | None:
    return Enrolment.objects.filter(project=project, annotator=annotator).first()


def import_batch_list(*, project: Project) -> QuerySet[ImportBatch]:
    return ImportBatch.objects.filter(project=project).order_by("-created_at")


@dataclass(frozen=True)
class ProjectProgress:
    items: int
    items_complete: int
    labels: int
    labels_withdrawn: int
    annotators_active: int
    annotators_withdrawn: int
    labels_per_item: dict[int, int]

    @property
    def percent_complete(self) -> float:
        return 100.0 * self.items_complete / self.items if self.items else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "items_complete": self.items_complete,
            "percent_complete": round(self.percent_complete, 1),
            "labels": self.labels,
            "labels_withdrawn": self.labels_withdrawn,
            "annotators_active": self.annotators_active,
            "annotators_withdrawn": self.annotators_withdrawn,
            "labels_per_item": {str(k): v for k, v in sorted(self.labels_per_item.items())},
        }


def project_progress(*, project: Project) -> ProjectProgress:
    """Counts from non-withdrawn labels: items fully labeled, annotators, labels per item."""
    k = project.annotations_per_item
    per_item = Counter(
        Annotation.objects.filter(project=project, withdrawn=False)
        .values("item")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("n", flat=True)
    )
    unlabeled = Item.objects.filter(project=project).count() - sum(per_item.values())
    histogram = dict(per_item)
    if unlabeled:
        histogram[0] = unlabeled
    labels = Annotation.objects.filter(project=project).aggregate(
        active=Count("id", filter=Q(withdrawn=False)),
        withdrawn=Count("id", filter=Q(withdrawn=True)),
    )
    enrolments = Enrolment.objects.filter(project=project).aggregate(
        active=Count("id", filter=Q(withdrawn_at__isnull=True)),
        withdrawn=Count("id", filter=Q(withdrawn_at__isnull=False)),
    )
    return ProjectProgress(
        items=sum(histogram.values()),
        items_complete=sum(count for n, count in histogram.items() if n >= k),
        labels=labels["active"],
        labels_withdrawn=labels["withdrawn"],
        annotators_active=enrolments["active"],
        annotators_withdrawn=enrolments["withdrawn"],
        labels_per_item=histogram,
    )


@dataclass(frozen=True)
class AnnotatorProgress:
    labeled: int
    skipped: int
    remaining: int


def annotator_progress(*, project: Project, annotator: User) -> AnnotatorProgress:
    """How far this annotator is: their labels, skips, and items they could still label."""
    counts = Assignment.objects.filter(project=project, annotator=annotator).aggregate(
        labeled=Count("id", filter=Q(status=Assignment.Status.SUBMITTED)),
        skipped=Count("id", filter=Q(status=Assignment.Status.SKIPPED)),
    )
    seen = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    remaining = (
        Item.objects.filter(project=project, slots_taken__lt=project.annotations_per_item)
        .filter(~Exists(seen))
        .count()
    )
    return AnnotatorProgress(counts["labeled"], counts["skipped"], remaining)
