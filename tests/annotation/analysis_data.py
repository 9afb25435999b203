"""Labelled projects for the agreement-analysis tests, built through the real services."""

from collections.abc import Callable
from dataclasses import dataclass

from annotation.models import Enrolment, Project
from annotation.services import annotation_submit, assignment_next, enrolment_survey_submit
from annotation.surveys import DEFAULT_SURVEY, PREFER_NOT_TO_SAY
from core.models import User
from tests.annotation.factories import make_enrolled_annotator, make_open_project

HATE = ("hateful", "offensive", "neither")
PRIVACY = ("clearly_private", "private", "public", "clearly_public")
AGE_ANSWERS = ("18-24", "18-24", "25-34", PREFER_NOT_TO_SAY)

Chooser = Callable[[int, int], str]


@dataclass
class Labelled:
    project: Project
    annotators: list[User]


def hate_choice(annotator: int, item: int) -> str:
    """Annotators 0 and 1 always agree, 2 is one category off, 3 agrees on even items."""
    offset = (0, 0, 1, item % 2)[annotator]
    return HATE[(item + offset) % len(HATE)]


def label_everything(project: Project, annotators: list[User], choose: Chooser) -> None:
    """Every annotator labels every item it is given, ``choose(annotator, item position)``."""
    first_item = min(project.items.values_list("pk", flat=True))
    for position, annotator in enumerate(annotators):
        while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
            value = choose(position, assignment.item_id - first_item)
            annotation_submit(annotator=annotator, item=assignment.item, value=value)


def make_labelled_project(
    *,
    n_items: int = 6,
    n_annotators: int = 4,
    preset: str = "hate_speech",
    choose: Chooser = hate_choice,
    survey: bool = True,
    k: int | None = None,
) -> Labelled:
    extra = {"survey": DEFAULT_SURVEY} if survey else {}
    project = make_open_project(n_items, k=k or n_annotators, preset=preset, **extra)
    annotators = [make_enrolled_annotator(project) for _ in range(n_annotators)]
    if survey:
        for annotator, age in zip(annotators, AGE_ANSWERS, strict=False):
            enrolment = Enrolment.objects.get(project=project, annotator=annotator)
            enrolment_survey_submit(enrolment=enrolment, answers={"age_group": age})
    label_everything(project, annotators, choose)
    return Labelled(project, annotators)
