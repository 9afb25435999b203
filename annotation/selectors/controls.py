"""Control item reads: a project's gold and attention-check items, and each annotator's
accuracy on them. Withdrawn labels are left out of both."""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from annotation.models import Annotation, ControlKind, Item, Project
from annotation.schemas import answers_match


@dataclass(frozen=True)
class ControlAccuracy:
    """How one annotator did on one kind of control item."""

    pseudonym: str
    kind: str
    n: int
    correct: int
    accuracy: float


def control_item_list(*, project: Project) -> QuerySet[Item]:
    """A project's gold and attention-check items, each with its number of live labels."""
    return (
        Item.objects.filter(project=project)
        .exclude(control=ControlKind.NONE)
        .annotate(labels=Count("annotations", filter=Q(annotations__withdrawn=False)))
        .order_by("external_id")
    )


def control_accuracy(*, project: Project) -> list[ControlAccuracy]:
    """Per annotator and control kind (gold, attention): answers given, answers equal to
    the researcher's expected answer, and their share. Withdrawn labels are left out, so
    withdrawn annotators do not appear. Sorted by pseudonym, then kind."""
    rows = (
        Annotation.objects.filter(
            project=project, withdrawn=False, item__expected_value__isnull=False
        )
        .exclude(item__control=ControlKind.NONE)
        .values_list("annotator__pseudonym", "item__control", "value", "item__expected_value")
    )
    tally: dict[tuple[str, str], list[int]] = {}
    for pseudonym, kind, value, expected in rows:
        counts = tally.setdefault((pseudonym, kind), [0, 0])
        counts[0] += 1
        counts[1] += answers_match(value, expected)
    return [
        ControlAccuracy(pseudonym, kind, n, correct, correct / n)
        for (pseudonym, kind), (n, correct) in sorted(tally.items())
    ]
