"""The world both permission matrices run against (``test_api_permissions``,
``test_page_permissions``), and the database snapshot they compare around refused requests.

Built through the real services, like every other test fixture (see each app's
``tests/<app>/factories.py``).
"""

from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.ingest import import_batch_create
from annotation.models import (
    Annotation,
    Assignment,
    ImportBatch,
    Item,
    Project,
    TakedownRequest,
)
from annotation.services import annotation_submit, assignment_next, takedown_file
from core.models import Role, User
from core.services import user_role_set
from ml.models import DatasetVersion, TrainingRun
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.core.factories import make_user
from tests.ml.factories import (
    make_built_version,
    make_failed_version,
    make_pending_run,
    make_trained_run,
)

ROLES = (
    "anonymous",
    "annotator_not_enrolled",
    "annotator_enrolled",
    "other_researcher",
    "owner",
    "auditor",
    "staff",
    # The owner after staff changed their role to annotator: ownership alone grants nothing.
    # Last, because acting as it demotes the owner for the rest of the test.
    "demoted_owner",
)
# One survey question, so that the per-group analysis has a question to answer for.
SURVEY_QUESTION = {
    "key": "region",
    "text": "Where you live",
    "kind": "single",
    "options": ["north", "south"],
}


@dataclass
class World:
    """One open project with an enrolled annotator who has labeled one item and holds
    another assignment; an item nobody holds; an open takedown request on the held item; a
    draft project of the same owner with one import batch; a second researcher's project;
    a built dataset version of the open project and a failed one; a trained run on that
    version and a queued one."""

    users: dict[str, User]
    project: Project
    draft: Project
    foreign: Project
    item: Item
    spare_item: Item
    assignment: Assignment
    annotation: Annotation
    takedown: TakedownRequest
    batch: ImportBatch
    question: str
    dataset: DatasetVersion
    failed_dataset: DatasetVersion
    run: TrainingRun
    pending_run: TrainingRun


def world_build() -> World:
    """Needs ``settings.MEDIA_ROOT`` pointed at a temporary folder (the batch's upload)."""
    project = make_open_project(4, k=2, survey=[SURVEY_QUESTION])
    owner = project.owner
    draft = make_project(owner)
    foreign = make_open_project(2)
    enrolled = make_enrolled_annotator(project)
    labeled = assignment_next(project=project, annotator=enrolled)
    assert labeled is not None
    annotation = annotation_submit(
        annotator=enrolled, item=labeled.item, value="hateful", rationale="SECRET-RATIONALE"
    ).annotation
    held = assignment_next(project=project, annotator=enrolled)
    assert held is not None
    spare_item = Item.objects.filter(project=project, assignments__isnull=True).order_by("pk")[0]
    (takedown,) = takedown_file(
        reference=str(held.item.pk),
        kind=TakedownRequest.Kind.PRIVACY,
        reason="It shows me.",
        contact="requester@example.net",
    )
    upload = SimpleUploadedFile("t.csv", b"external_id,text,license\nq1,hi,CC0-1.0\n")
    batch = import_batch_create(project=draft, actor=owner, upload=upload)
    dataset = make_built_version(project, owner)
    users = {
        "annotator_not_enrolled": make_user(Role.ANNOTATOR),
        "annotator_enrolled": enrolled,
        "other_researcher": foreign.owner,
        "owner": owner,
        "auditor": make_user(Role.AUDITOR),
        "staff": make_user(Role.RESEARCHER, is_staff=True),
    }
    return World(
        users=users,
        project=project,
        draft=draft,
        foreign=foreign,
        item=held.item,
        spare_item=spare_item,
        assignment=held,
        annotation=annotation,
        takedown=takedown,
        batch=batch,
        question=str(SURVEY_QUESTION["key"]),
        dataset=dataset,
        failed_dataset=make_failed_version(project, owner),
        run=make_trained_run(dataset, owner),
        pending_run=make_pending_run(dataset, owner),
    )


def world_user(world: World, role: str) -> User | None:
    """The user a request of ``role`` comes from (``None``: anonymous).

    ``demoted_owner`` is the project's owner once staff made them an annotator, through
    the audited service; call this before taking a ``db_state`` snapshot, since the first
    call demotes the owner.
    """
    if role == "anonymous":
        return None
    if role == "demoted_owner":
        owner = world.users["owner"]
        if owner.role != Role.ANNOTATOR:
            user_role_set(user=owner, role=Role.ANNOTATOR, actor=world.users["staff"])
        return owner
    return world.users[role]


def db_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, the audit log and its chain head included: a refused
    request must leave all of them exactly as they were (not only their counts)."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values_list())
        for model in apps.get_models(include_auto_created=True)
    }
