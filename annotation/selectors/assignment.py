"""An annotator's own assignments, enrolment and progress.

Only the annotator's own rows are read, and nothing is claimed: ``assignment_current`` is
the item they hold now, ``annotation.services.assignment`` hands items out. Progress must
not tell control items apart, so ``remaining`` counts unseen control items with the
regular ones. The ``*_for`` and ``*_rows`` versions run a fixed number of queries however
many projects.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

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
    """The item this annotator holds right now (open, not expired), without claiming one."""
    return (
        Assignment.objects.filter(
            project=project,
            annotator=annotator,
            status=Assignment.Status.OPEN,
            expires_at__gt=timezone.now(),
        )
        .select_related("item")
        .first()
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
