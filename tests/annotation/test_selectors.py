"""Reads for the annotation campaign: who sees which projects, items and labels."""

from dataclasses import dataclass

import pytest

from annotation.models import Annotation, Assignment, Enrolment, Project, ProjectStatus
from annotation.schemas import HATE_SPEECH_SCHEMA
from annotation.selectors import (
    annotation_get_own,
    annotation_list_for,
    annotator_progress,
    assignment_get_own,
    assignment_list_own,
    enrolment_get,
    item_get_for,
    item_list,
    project_get_for,
    project_list_for,
    project_managed_by,
    project_progress,
    project_readable_by_staff_role,
)
from annotation.services import (
    annotation_submit,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_withdraw,
    project_transition,
)
from core.errors import NotFound
from core.models import Role, User
from tests.factories import add_text_items, make_enrolled_annotator, make_project, make_user

pytestmark = pytest.mark.django_db

HATEFUL, OFFENSIVE, NEITHER = HATE_SPEECH_SCHEMA.values


def open_project(owner: User, n_items: int = 3, *, k: int = 3) -> Project:
    project = make_project(owner, k=k)
    add_text_items(project, n_items)
    project_transition(project=project, actor=owner, status=ProjectStatus.OPEN)
    return project


def close(project: Project) -> None:
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)


def label(project: Project, annotator: User, value: str = NEITHER) -> Annotation:
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    return annotation_submit(annotator=annotator, item=assignment.item, value=value).annotation


@dataclass
class World:
    alice: User
    bob: User
    auditor: User
    staff: User
    annotator: User
    alice_draft: Project
    alice_open: Project
    bob_open: Project
    bob_closed_joined: Project
    bob_closed: Project


@pytest.fixture
def world() -> World:
    """Two researchers' projects in every state; the annotator joined one now closed."""
    alice, bob = make_user(Role.RESEARCHER), make_user(Role.RESEARCHER)
    annotator = make_user(Role.ANNOTATOR)
    bob_closed_joined = open_project(bob)
    enrolment_create(project=bob_closed_joined, annotator=annotator)
    close(bob_closed_joined)
    bob_closed = open_project(bob)
    close(bob_closed)
    return World(
        alice=alice,
        bob=bob,
        auditor=make_user(Role.AUDITOR),
        staff=make_user(Role.ANNOTATOR, is_staff=True),
        annotator=annotator,
        alice_draft=make_project(alice),
        alice_open=open_project(alice),
        bob_open=open_project(bob),
        bob_closed_joined=bob_closed_joined,
        bob_closed=bob_closed,
    )


def ids(projects) -> set[int]:
    return {project.pk for project in projects}


# ---------------------------------------------------------------- projects


def test_project_list_for_researcher_sees_own_projects_only(world: World) -> None:
    assert ids(project_list_for(user=world.alice)) == {world.alice_draft.pk, world.alice_open.pk}
    assert ids(project_list_for(user=world.bob)) == {
        world.bob_open.pk,
        world.bob_closed_joined.pk,
        world.bob_closed.pk,
    }


@pytest.mark.parametrize("who", ["auditor", "staff"])
def test_project_list_for_auditor_and_staff_see_all(world: World, who: str) -> None:
    assert ids(project_list_for(user=getattr(world, who))) == set(
        Project.objects.values_list("pk", flat=True)
    )


def test_project_list_for_annotator_sees_open_and_joined_only(world: World) -> None:
    assert ids(project_list_for(user=world.annotator)) == {
        world.alice_open.pk,
        world.bob_open.pk,
        world.bob_closed_joined.pk,
    }
    newcomer = make_user(Role.ANNOTATOR)
    assert ids(project_list_for(user=newcomer)) == {world.alice_open.pk, world.bob_open.pk}


def test_project_list_for_one_query_with_owner(world: World, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        pseudonyms = [project.owner.pseudonym for project in project_list_for(user=world.auditor)]
    assert len(pseudonyms) == 5


def test_project_list_for_annotator_query_count_constant(
    world: World, django_assert_num_queries
) -> None:
    for _ in range(3):
        open_project(world.alice, 1)
    with django_assert_num_queries(1):
        listed = [project.owner.pseudonym for project in project_list_for(user=world.annotator)]
    assert len(listed) == 6


def test_project_get_for_other_researchers_project_not_found(world: World) -> None:
    assert project_get_for(user=world.alice, project_id=world.alice_open.pk) == world.alice_open
    for project in (world.bob_open, world.bob_closed):
        with pytest.raises(NotFound):
            project_get_for(user=world.alice, project_id=project.pk)


def test_project_get_for_annotator_draft_or_unjoined_closed_not_found(world: World) -> None:
    assert project_get_for(user=world.annotator, project_id=world.bob_closed_joined.pk)
    for project in (world.alice_draft, world.bob_closed):
        with pytest.raises(NotFound):
            project_get_for(user=world.annotator, project_id=project.pk)


def test_project_get_for_missing_id_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        project_get_for(user=world.staff, project_id=10**9)


def test_project_managed_by_owner_and_staff_only(world: World) -> None:
    assert project_managed_by(user=world.alice, project_id=world.alice_open.pk)
    assert project_managed_by(user=world.staff, project_id=world.alice_open.pk)
    for user in (world.bob, world.auditor, world.annotator):
        with pytest.raises(NotFound):
            project_managed_by(user=user, project_id=world.alice_open.pk)


def test_project_readable_by_staff_role_excludes_annotators_and_other_owners(
    world: World,
) -> None:
    for user in (world.alice, world.auditor, world.staff):
        assert project_readable_by_staff_role(user=user, project_id=world.alice_open.pk)
    for user in (world.bob, world.annotator):
        with pytest.raises(NotFound):
            project_readable_by_staff_role(user=user, project_id=world.alice_open.pk)


# ---------------------------------------------------------------- items


def test_item_get_for_annotator_only_with_assignment(world: World) -> None:
    project = world.alice_open
    annotator, stranger = make_enrolled_annotator(project), make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    assert item_get_for(user=annotator, item_id=assignment.item_id).pk == assignment.item_id
    with pytest.raises(NotFound):
        item_get_for(user=stranger, item_id=assignment.item_id)
    other_item = project.items.exclude(pk=assignment.item_id).first()
    assert other_item is not None
    with pytest.raises(NotFound):
        item_get_for(user=annotator, item_id=other_item.pk)


def test_item_get_for_after_withdrawal_cancelled_assignment_not_found(world: World) -> None:
    project = world.alice_open
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=annotator), actor=annotator
    )
    with pytest.raises(NotFound):
        item_get_for(user=annotator, item_id=assignment.item_id)


def test_item_get_for_staff_roles(world: World) -> None:
    item = world.alice_open.items.first()
    assert item is not None
    for user in (world.alice, world.auditor, world.staff):
        assert item_get_for(user=user, item_id=item.pk).pk == item.pk
    for user in (world.bob, world.annotator):
        with pytest.raises(NotFound):
            item_get_for(user=user, item_id=item.pk)
    with pytest.raises(NotFound):
        item_get_for(user=world.staff, item_id=10**9)


def test_item_list_ordering_allowlisted_only(world: World, django_assert_num_queries) -> None:
    project = world.alice_open
    expected = list(project.items.order_by("id").values_list("pk", flat=True))
    with django_assert_num_queries(1):
        listed = [(item.pk, item.source) for item in item_list(project=project)]
    assert [pk for pk, _ in listed] == expected
    assert [i.pk for i in item_list(project=project, ordering="-id")] == expected[::-1]
    # Anything outside the allowlist (including relation traversal) falls back to id order.
    for ordering in ("project__owner__password", "-text", "sha256"):
        assert [i.pk for i in item_list(project=project, ordering=ordering)] == expected


# ---------------------------------------------------------------- labels


def test_annotation_list_for_annotator_never_returns_others_labels(world: World) -> None:
    project = world.alice_open
    first, second = make_enrolled_annotator(project), make_enrolled_annotator(project)
    mine = {label(project, first, HATEFUL).pk for _ in range(2)}
    theirs = {label(project, second, NEITHER).pk for _ in range(3)}
    assert ids(annotation_list_for(user=first, project=project)) == mine
    assert ids(annotation_list_for(user=second, project=project)) == theirs
    # Someone enrolled elsewhere sees nothing here.
    outsider = make_enrolled_annotator(world.bob_open)
    assert not annotation_list_for(user=outsider, project=project).exists()
    # Researchers and auditors see every label that is not withdrawn.
    for reader in (world.alice, world.auditor):
        assert ids(annotation_list_for(user=reader, project=project)) == mine | theirs


def test_annotation_list_for_one_query(world: World, django_assert_num_queries) -> None:
    project = world.alice_open
    for _ in range(3):
        label(project, make_enrolled_annotator(project))
    with django_assert_num_queries(1):
        rows = [
            (a.annotator.pseudonym, a.item.external_id)
            for a in annotation_list_for(user=world.alice, project=project)
        ]
    assert len(rows) == 3


def test_annotation_get_own_other_annotators_label_not_found(world: World) -> None:
    project = world.alice_open
    author, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    annotation = label(project, author)
    assert annotation_get_own(user=author, annotation_id=annotation.pk).pk == annotation.pk
    for user in (other, world.alice, world.auditor):
        with pytest.raises(NotFound):
            annotation_get_own(user=user, annotation_id=annotation.pk)


def test_assignment_get_own_and_list_own_scoped_to_annotator(
    world: World, django_assert_num_queries
) -> None:
    project = world.alice_open
    owner, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    label(project, owner)
    assignment = assignment_next(project=project, annotator=owner)
    assert assignment is not None
    assert assignment_get_own(user=owner, assignment_id=assignment.pk).pk == assignment.pk
    with pytest.raises(NotFound):
        assignment_get_own(user=other, assignment_id=assignment.pk)
    with django_assert_num_queries(1):
        own = list(assignment_list_own(user=owner, project=project))
    assert len(own) == 2 and all(a.annotator_id == owner.pk for a in own)
    assert list(assignment_list_own(user=other, project=project)) == []


def test_enrolment_get_only_for_that_pair(world: World) -> None:
    assert enrolment_get(project=world.bob_closed_joined, annotator=world.annotator) is not None
    assert enrolment_get(project=world.bob_open, annotator=world.annotator) is None


# ---------------------------------------------------------------- progress


def test_project_progress_scripted_scenario() -> None:
    researcher = make_user(Role.RESEARCHER)
    project = open_project(researcher, 4, k=3)
    first, second, third = (make_enrolled_annotator(project) for _ in range(3))
    progress = project_progress(project=project)
    assert (progress.items, progress.items_complete, progress.labels) == (4, 0, 0)
    assert progress.labels_per_item == {0: 4}
    assert progress.annotators_active == 3

    # first labels two items; second's first label lands on an untouched item
    # (least-labeled first), so three items have one label and one has none.
    label(project, first)
    label(project, first)
    label(project, second)
    progress = project_progress(project=project)
    assert progress.labels == 3
    assert progress.labels_per_item == {1: 3, 0: 1}
    assert progress.items_complete == 0

    # second and third label everything they can: every item reaches k=3 only where all
    # three annotators labeled it.
    while (a := assignment_next(project=project, annotator=second)) is not None:
        annotation_submit(annotator=second, item=a.item, value=OFFENSIVE)
    while (a := assignment_next(project=project, annotator=third)) is not None:
        annotation_submit(annotator=third, item=a.item, value=HATEFUL)
    progress = project_progress(project=project)
    assert progress.labels == 2 + 4 + 4
    assert progress.labels_per_item == {3: 2, 2: 2}
    assert progress.items_complete == 2
    assert progress.percent_complete == 50.0
    assert progress.as_dict()["labels_per_item"] == {"2": 2, "3": 2}

    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=project, annotator=third), actor=third
    )
    progress = project_progress(project=project)
    assert progress.labels == 6
    assert progress.labels_withdrawn == 4
    assert progress.labels_per_item == {2: 2, 1: 2}
    assert progress.items_complete == 0
    assert (progress.annotators_active, progress.annotators_withdrawn) == (2, 1)


def test_project_progress_query_count_independent_of_size(django_assert_num_queries) -> None:
    researcher = make_user(Role.RESEARCHER)
    small, large = open_project(researcher, 2, k=2), open_project(researcher, 30, k=2)
    for project in (small, large):
        for _ in range(2):
            label(project, make_enrolled_annotator(project))
    with django_assert_num_queries(4):
        project_progress(project=small)
    with django_assert_num_queries(4):
        assert project_progress(project=large).items == 30


def test_annotator_progress_counts_labels_skips_and_remaining() -> None:
    researcher = make_user(Role.RESEARCHER)
    project = open_project(researcher, 5, k=1)
    annotator, other = make_enrolled_annotator(project), make_enrolled_annotator(project)
    label(project, annotator)
    label(project, annotator)
    label(project, other)
    skipped = assignment_next(project=project, annotator=annotator)
    assert skipped is not None
    assignment_skip(assignment=skipped, annotator=annotator)
    progress = annotator_progress(project=project, annotator=annotator)
    assert (progress.labeled, progress.skipped) == (2, 1)
    # Five items: two labeled by them, one skipped by them, one filled by the other.
    assert progress.remaining == 1
    assert Assignment.objects.filter(annotator=annotator).count() == 3
