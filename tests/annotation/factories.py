"""Projects, items and enrolled annotators for tests, built through the real services."""

import itertools
from typing import Any

from annotation.models import ControlKind, Item, Modality, Project, ProjectStatus
from annotation.schemas import HATE_SPEECH_SCHEMA
from annotation.services import (
    enrolment_create,
    item_control_set,
    project_create,
    project_transition,
)
from core.models import Role, User
from tests.core.factories import make_user

# The hate-speech preset's choices (the default schema of ``make_project``).
HATEFUL, OFFENSIVE, NEITHER = HATE_SPEECH_SCHEMA.values
_counter = itertools.count(1)


def make_project(
    owner: User | None = None,
    *,
    preset: str = "hate_speech",
    k: int = 3,
    **fields: Any,
) -> Project:
    owner = owner or make_user(Role.RESEARCHER)
    fields.setdefault("title", f"Project {next(_counter)}")
    fields.setdefault("risk_disclosure", "Some texts are offensive.")
    fields.setdefault("data_use_statement", "Labels are published in a research dataset.")
    fields.setdefault("compensation_amount", "0.10")
    return project_create(owner=owner, preset=preset, annotations_per_item=k, **fields)


def add_text_items(project: Project, n: int, *, start: int = 0) -> list[Item]:
    """Text items created directly: ingest has its own tests; these need only rows."""
    items = [
        Item(
            project=project,
            external_id=f"t{start + i}",
            kind=Modality.TEXT,
            text=f"sample text number {start + i}",
            sha256=f"{start + i:064x}",
            license="CC-BY-4.0",
        )
        for i in range(n)
    ]
    return Item.objects.bulk_create(items)


def add_control_items(
    project: Project,
    n: int,
    *,
    expected_value: Any,
    kind: str = ControlKind.GOLD,
    start: int = 10_000,
) -> list[Item]:
    """Text items marked as control items by the project's owner, through the service."""
    return [
        item_control_set(
            item=item, actor=project.owner, control=kind, expected_value=expected_value
        )
        for item in add_text_items(project, n, start=start)
    ]


def make_open_project(n_items: int = 5, *, k: int = 3, **fields: Any) -> Project:
    project = make_project(k=k, **fields)
    add_text_items(project, n_items)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    return project


def make_enrolled_annotator(project: Project, **extra: Any) -> User:
    annotator = make_user(Role.ANNOTATOR, **extra)
    enrolment_create(project=project, annotator=annotator)
    return annotator
