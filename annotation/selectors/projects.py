"""Project reads: the projects a user sees or manages, and their progress.

Visibility: staff and auditors see every project, researchers the ones they manage
(``Project.is_managed_by``), annotators open projects and the ones they joined; a project
a user may not see is a 404, never a 403, so its existence does not leak. Progress counts
the non-withdrawn labels of regular items; control items are counted apart and taken-down
items not at all. ``project_progress_for`` runs four queries however many projects.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from annotation.models import Annotation, ControlKind, Enrolment, Item, Project, ProjectStatus
from core.errors import NotFound
from core.models import User


def project_list_for(*, user: User) -> QuerySet[Project]:
    queryset = Project.objects.select_related("owner")
    if user.is_staff or user.is_auditor:
        return queryset.all()
    if user.is_researcher:
        return queryset.managed_by(user)
    joined = Enrolment.objects.filter(project=OuterRef("pk"), annotator=user)
    return queryset.filter(Q(status=ProjectStatus.OPEN) | Exists(joined))


def project_get_for(*, user: User, project_id: int) -> Project:
    project = project_list_for(user=user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_managed_by(*, user: User, project_id: int) -> Project:
    """A project this user may change (``Project.is_managed_by``). 404 otherwise (no
    existence leak)."""
    project = Project.objects.managed_by(user).filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def project_readable_by_staff_role(*, user: User, project_id: int) -> Project:
    """A project whose items and labels this user may read: whoever manages it, or an
    auditor."""
    queryset = Project.objects.all() if user.is_auditor else Project.objects.managed_by(user)
    project = queryset.filter(pk=project_id).first()
    if project is None:
        raise NotFound("No such project.")
    return project


def enrolment_active_count(*, project: Project) -> int:
    """Annotators enrolled and not withdrawn: those a change of terms asks to consent again."""
    return Enrolment.objects.filter(project=project, withdrawn_at__isnull=True).count()


def _count_per(queryset: QuerySet[Any], *, outer: str) -> Coalesce:
    """The number of rows of ``queryset``, correlated to the outer row through ``outer`` (a
    field filtered on an ``OuterRef``), as a subquery: 0, not NULL, when there are none."""
    counted = queryset.order_by().values(outer).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@dataclass(frozen=True)
class ProjectProgress:
    """Regular items and their labels; control items and their labels counted apart."""

    items: int
    items_complete: int
    labels: int
    labels_withdrawn: int
    annotators_active: int
    annotators_withdrawn: int
    labels_per_item: dict[int, int]
    control_items: int = 0
    control_labels: int = 0

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
            "control_items": self.control_items,
            "control_labels": self.control_labels,
        }


def project_progress(*, project: Project) -> ProjectProgress:
    """Counts from non-withdrawn labels: items fully labeled, annotators, labels per item.

    Item and label counts are of regular items: control items (gold and attention checks)
    are never "complete" and their labels are not the dataset's; they are counted apart.
    """
    return project_progress_for(projects=[project])[project.pk]


def project_progress_for(*, projects: Sequence[Project]) -> dict[int, ProjectProgress]:
    """``project_progress`` of each project, by id: four queries however many projects."""
    ids = [project.pk for project in projects]
    if not ids:
        return {}
    # Taken-down items leave every count, and so do their labels.
    live_labels = Annotation.objects.filter(item=OuterRef("pk"), withdrawn=False)
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    for project_id, n_labels, n_items in (
        Item.objects.filter(project__in=ids, control=ControlKind.NONE, tombstoned_at__isnull=True)
        .annotate(n_labels=_count_per(live_labels, outer="item"))
        .values_list("project", "n_labels")
        .annotate(n_items=Count("pk"))
        .order_by()
    ):
        histograms[project_id][n_labels] = n_items
    control_items = dict(
        Item.objects.filter(project__in=ids, tombstoned_at__isnull=True)
        .exclude(control=ControlKind.NONE)
        .values_list("project")
        .annotate(n=Count("pk"))
        .order_by()
    )
    regular = Q(item__control=ControlKind.NONE)
    # Aliases must not be field names: a later filter would read the alias instead.
    labels = {
        row["project"]: row
        for row in Annotation.objects.filter(project__in=ids, item__tombstoned_at__isnull=True)
        .values("project")
        .annotate(
            n_active=Count("pk", filter=regular & Q(withdrawn=False)),
            n_withdrawn=Count("pk", filter=regular & Q(withdrawn=True)),
            n_control=Count("pk", filter=~regular & Q(withdrawn=False)),
        )
        .order_by()
    }
    enrolments = {
        row["project"]: row
        for row in Enrolment.objects.filter(project__in=ids)
        .values("project")
        .annotate(
            n_active=Count("pk", filter=Q(withdrawn_at__isnull=True)),
            n_withdrawn=Count("pk", filter=Q(withdrawn_at__isnull=False)),
        )
        .order_by()
    }
    progress = {}
    for project in projects:
        histogram = histograms.get(project.pk, {})
        project_labels = labels.get(project.pk, {})
        project_enrolments = enrolments.get(project.pk, {})
        progress[project.pk] = ProjectProgress(
            items=sum(histogram.values()),
            items_complete=sum(
                count for n, count in histogram.items() if n >= project.annotations_per_item
            ),
            labels=project_labels.get("n_active", 0),
            labels_withdrawn=project_labels.get("n_withdrawn", 0),
            annotators_active=project_enrolments.get("n_active", 0),
            annotators_withdrawn=project_enrolments.get("n_withdrawn", 0),
            labels_per_item=histogram,
            control_items=control_items.get(project.pk, 0),
            control_labels=project_labels.get("n_control", 0),
        )
    return progress
