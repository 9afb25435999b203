"""An annotator's own assignments, enrolment and progress.

Only the annotator's own rows are read, and nothing is claimed: ``assignment_current`` is
the item they hold now, ``annotation.services.assignment`` hands items out; the one
exception, ``assignment_wait_hint``, reads only when other annotators' assignments run
out, never whose they are or what they hold. Whether an assignment has expired is
decided by the database's clock (``Now()``), as in the services. Progress must
not tell control items apart, so ``remaining`` counts unseen control items with the
regular ones. The ``*_for`` and ``*_rows`` versions run a fixed number of queries however
many projects.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, Min, OuterRef, QuerySet
from django.db.models.functions import Now

from annotation.models import Assignment, ControlKind, Enrolment, Item, Project
from annotation.selectors.projects import _count_per
from core.errors import NotFound
from core.models import User


def assignment_get_own(*, user: User, assignment_id: int) -> Assignment:
    assignment = (
        Assignment.objects.select_related("item", "project")
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


def assignment_current(*, project: Project, annotator: User) -> Assignment | None:
    """The item this annotator holds right now (open, not expired), without claiming one.

    "Not expired" by the database's clock: the one that stamped the deadline and that
    expires assignments, whatever this host's clock says.
    """
    return (
        Assignment.objects.filter(
            project=project,
            annotator=annotator,
            status=Assignment.Status.OPEN,
            expires_at__gt=Now(),
        )
        .select_related("item")
        .first()
    )


@dataclass(frozen=True)
class AssignmentWaitHint:
    """When to come back: each item the annotator could still label is full only because
    other annotators hold it, and the first of their assignments runs out at ``retry_at``.

    Both numbers are the database's clock, the one that expires assignments:
    ``retry_at`` is a deadline stamped by it, ``retry_after_seconds`` the time from its
    now to that deadline, rounded up (0 once the deadline passed and only the expiry is
    still to run: the next request for an item runs it).
    """

    retry_at: datetime
    retry_after_seconds: int

    @property
    def retry_after_minutes(self) -> int:
        """The wait in whole minutes for people to read: rounded up, at least one."""
        return max(1, math.ceil(self.retry_after_seconds / 60))


def assignment_wait_hint(*, project: Project, annotator: User) -> AssignmentWaitHint | None:
    """Whether, and until when, the annotator must wait for an item others hold; ``None``
    when nothing will free up for them (they are done, or only taken-down, control or
    already-seen items are held).

    Meant for the nothing-left path (``assignment_next`` gave nothing, or progress shows
    nothing remaining): one query. Held means an open assignment of another annotator on
    a regular, live item that is full and that this annotator may still be given (never
    given to them, or their own assignment of it expired); when it runs out, its slot
    comes back. Only the earliest deadline is read: no annotator, no item.
    """
    seen = Assignment.objects.filter(item=OuterRef("item"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    held = Assignment.objects.filter(
        project=project,
        status=Assignment.Status.OPEN,
        item__control=ControlKind.NONE,
        item__tombstoned_at__isnull=True,
        item__slots_taken__gte=project.annotations_per_item,
    ).filter(~Exists(seen))
    earliest = held.aggregate(retry_at=Min("expires_at"), wait=Min("expires_at") - Now())
    if earliest["retry_at"] is None:
        return None
    return AssignmentWaitHint(
        retry_at=earliest["retry_at"],
        retry_after_seconds=max(0, math.ceil(earliest["wait"].total_seconds())),
    )


def assignment_list_own(*, user: User, project: Project) -> QuerySet[Assignment]:
    return Assignment.objects.filter(project=project, annotator=user).order_by("-created_at")


def enrolment_get(*, project: Project, annotator: User) -> Enrolment | None:
    return Enrolment.objects.filter(project=project, annotator=annotator).first()


@dataclass(frozen=True)
class AnnotatorProgress:
    labeled: int
    skipped: int
    remaining: int


def annotator_progress(*, project: Project, annotator: User) -> AnnotatorProgress:
    """How far this annotator is: their labels, skips, and items they could still be given.

    Control items must not be told apart by watching these numbers: ``remaining`` counts
    the unseen control items with the regular ones, so it drops by one whichever kind is
    handed out (and labeled and skipped count both kinds). Once no regular item is left
    no control item is given either, and ``remaining`` is 0.
    """
    return annotator_progress_for(projects=[project], annotator=annotator)[project.pk]


def annotator_progress_for(
    *, projects: Sequence[Project], annotator: User
) -> dict[int, AnnotatorProgress]:
    """``annotator_progress`` in each project, by id: one query however many projects."""
    own = Assignment.objects.filter(project=OuterRef("pk"), annotator=annotator)
    live = Item.objects.filter(project=OuterRef("pk"), tombstoned_at__isnull=True)
    # A regular item whose assignment expired may be given again...
    reusable = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator).exclude(
        status=Assignment.Status.EXPIRED
    )
    # ...a control item is shown to an annotator once at most, even after it expired.
    given = Assignment.objects.filter(item=OuterRef("pk"), annotator=annotator)
    rows = (
        Project.objects.filter(pk__in=[project.pk for project in projects])
        .annotate(
            n_labeled=_count_per(own.filter(status=Assignment.Status.SUBMITTED), outer="project"),
            n_skipped=_count_per(own.filter(status=Assignment.Status.SKIPPED), outer="project"),
            n_regular_left=_count_per(
                live.filter(
                    control=ControlKind.NONE, slots_taken__lt=OuterRef("annotations_per_item")
                ).filter(~Exists(reusable)),
                outer="project",
            ),
            n_controls_left=_count_per(
                live.exclude(control=ControlKind.NONE).filter(~Exists(given)), outer="project"
            ),
        )
        .order_by()
        .values_list("pk", "n_labeled", "n_skipped", "n_regular_left", "n_controls_left")
    )
    return {
        project_id: AnnotatorProgress(
            labeled, skipped, regular_left + controls_left if regular_left else 0
        )
        for project_id, labeled, skipped, regular_left, controls_left in rows
    }


@dataclass(frozen=True)
class AnnotatorProjectRow:
    """A project as an annotator's project list shows it: their enrolment and their own
    progress, both ``None`` until they join."""

    project: Project
    enrolment: Enrolment | None
    progress: AnnotatorProgress | None


def annotator_project_rows(
    *, annotator: User, projects: Iterable[Project]
) -> list[AnnotatorProjectRow]:
    """The annotator's enrolment (with its consent and project, for the re-consent check)
    and progress in each project, in the given order: two queries however many projects,
    one when they joined none of them."""
    projects = list(projects)
    enrolments = {
        enrolment.project_id: enrolment
        for enrolment in Enrolment.objects.filter(
            annotator=annotator, project__in=[project.pk for project in projects]
        ).select_related("project", "consent")
    }
    joined = [project for project in projects if project.pk in enrolments]
    progress = annotator_progress_for(projects=joined, annotator=annotator) if joined else {}
    return [
        AnnotatorProjectRow(project, enrolments.get(project.pk), progress.get(project.pk))
        for project in projects
    ]
