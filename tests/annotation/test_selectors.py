"""Reads for the annotation campaign: who sees which projects, items and labels."""

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db.models.functions import Now
from django.utils import timezone

from annotation.consent import enrolment_needs_reconsent
from annotation.models import (
    Annotation,
    Assignment,
    ControlKind,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
)
from annotation.selectors import (
    AnnotatorProgress,
    annotation_get_own,
    annotation_list_for,
    annotator_progress,
    annotator_progress_for,
    annotator_project_rows,
    assignment_get_own,
    assignment_list_own,
    assignment_wait_hint,
    enrolment_get,
    item_get_for,
    item_list,
    project_get_for,
    project_list_for,
    project_managed_by,
    project_progress,
    project_progress_for,
    project_readable_by_staff_role,
)
from annotation.services import (
    annotation_submit,
    assignment_next,
    assignment_skip,
    assignments_expire,
    enrolment_create,
    enrolment_withdraw,
    project_transition,
    takedown_decide,
    takedown_file,
)
from core.errors import NotFound
from core.models import Role, User
from tests.annotation.factories import (
    HATEFUL,
    NEITHER,
    OFFENSIVE,
    add_control_items,
    add_text_items,
    make_enrolled_annotator,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


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


# ---------------------------------------------------------------- progress of many projects at once


@pytest.fixture
def seeded_random() -> Iterator[None]:
    state = random.getstate()
    random.seed(7)
    yield
    random.setstate(state)


def expire(assignment: Assignment) -> None:
    """The assignment's time runs out and the expiry sweep frees it."""
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert assignments_expire(project_id=assignment.project_id) == 1


def take_down(item: Item) -> None:
    (request,) = takedown_file(reference=str(item.pk), kind="privacy", reason="It shows me.")
    takedown_decide(request=request, actor=item.project.owner, accept=True, reason="Checked.")


@dataclass
class Campaign:
    annotator: User
    projects: list[Project]
    first: Project
    exhausted: Project
    stranger: Project


@pytest.fixture
def campaign(seeded_random: None) -> Campaign:
    """One annotator's progress in every state, next to other annotators' work: labels,
    a skip, items others filled, an open assignment; no regular item left but unseen control
    items; expired regular and control assignments with taken-down items; withdrawn; joined
    then closed; open and never joined."""
    researcher = make_user(Role.RESEARCHER)
    annotator = make_user(Role.ANNOTATOR)

    first = open_project(researcher, 6, k=1)
    enrolment_create(project=first, annotator=annotator)
    label(first, annotator)
    label(first, annotator)
    skipped = assignment_next(project=first, annotator=annotator)
    assert skipped is not None
    assignment_skip(assignment=skipped, annotator=annotator)
    label(first, make_enrolled_annotator(first))
    assert assignment_next(project=first, annotator=annotator) is not None  # held open

    exhausted = open_project(researcher, 2, k=2)
    add_control_items(exhausted, 2, expected_value=NEITHER)
    enrolment_create(project=exhausted, annotator=annotator)
    label(exhausted, annotator)
    label(exhausted, annotator)

    mixed = make_project(researcher, k=2, control_rate=0.5)
    add_text_items(mixed, 8)
    add_control_items(mixed, 4, expected_value=NEITHER)
    project_transition(project=mixed, actor=researcher, status=ProjectStatus.OPEN)
    enrolment_create(project=mixed, annotator=annotator)
    label(mixed, make_enrolled_annotator(mixed))
    expired_kinds: set[bool] = set()
    while len(expired_kinds) < 2:  # one regular and one control assignment run out
        assignment = assignment_next(project=mixed, annotator=annotator)
        assert assignment is not None, "the seed mixes a control item in"
        is_control = bool(assignment.item.control)
        if is_control in expired_kinds:
            annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
        else:
            expire(assignment)
            expired_kinds.add(is_control)
    never_given = Item.objects.filter(project=mixed, assignments__isnull=True).order_by("pk")
    for unseen in (
        never_given.filter(control=ControlKind.NONE).first(),
        never_given.exclude(control=ControlKind.NONE).first(),
    ):
        assert unseen is not None
        take_down(unseen)

    withdrawn = open_project(researcher, 3)
    enrolment_create(project=withdrawn, annotator=annotator)
    label(withdrawn, annotator)
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=withdrawn, annotator=annotator), actor=annotator
    )

    closed = open_project(researcher, 3)
    enrolment_create(project=closed, annotator=annotator)
    label(closed, annotator)
    close(closed)

    stranger = open_project(researcher, 3)
    label(stranger, make_enrolled_annotator(stranger))
    return Campaign(
        annotator=annotator,
        projects=[first, exhausted, mixed, withdrawn, closed, stranger],
        first=first,
        exhausted=exhausted,
        stranger=stranger,
    )


def progress_from_rows(*, project: Project, annotator: User) -> AnnotatorProgress:
    """``annotator_progress``'s documented rule, counted in Python from the rows."""
    mine = dict(
        Assignment.objects.filter(project=project, annotator=annotator).values_list(
            "item_id", "status"
        )
    )
    live = list(Item.objects.filter(project=project, tombstoned_at__isnull=True))
    regular = [
        item
        for item in live
        if not item.control
        and item.slots_taken < project.annotations_per_item
        and mine.get(item.pk, Assignment.Status.EXPIRED) == Assignment.Status.EXPIRED
    ]
    controls = [item for item in live if item.control and item.pk not in mine]
    statuses = list(mine.values())
    return AnnotatorProgress(
        labeled=statuses.count(Assignment.Status.SUBMITTED),
        skipped=statuses.count(Assignment.Status.SKIPPED),
        remaining=len(regular) + len(controls) if regular else 0,
    )


def test_annotator_progress_for_many_projects_equals_each_project_alone(
    campaign: Campaign, django_assert_num_queries
) -> None:
    annotator = campaign.annotator

    with django_assert_num_queries(1):
        together = annotator_progress_for(projects=campaign.projects, annotator=annotator)

    alone = {
        project.pk: annotator_progress(project=project, annotator=annotator)
        for project in campaign.projects
    }
    from_rows = {
        project.pk: progress_from_rows(project=project, annotator=annotator)
        for project in campaign.projects
    }
    assert together == alone == from_rows
    # Six items, k=1: two labeled, one skipped, one filled by another, one held: one left.
    assert together[campaign.first.pk] == AnnotatorProgress(labeled=2, skipped=1, remaining=1)
    # No regular item left: the two unseen control items are not counted either.
    assert together[campaign.exhausted.pk] == AnnotatorProgress(2, 0, 0)
    assert together[campaign.stranger.pk] == AnnotatorProgress(0, 0, 3)


def test_annotator_project_rows_enrolment_and_progress_only_where_joined(
    campaign: Campaign, django_assert_num_queries
) -> None:
    annotator = campaign.annotator
    projects = list(project_list_for(user=annotator))

    with django_assert_num_queries(2):
        rows = annotator_project_rows(annotator=annotator, projects=projects)
        reconsent = [row.enrolment and enrolment_needs_reconsent(row.enrolment) for row in rows]

    assert [row.project for row in rows] == projects
    assert ids(projects) == ids(campaign.projects)
    assert reconsent == [False if row.enrolment else None for row in rows]
    for row in rows:
        enrolment = enrolment_get(project=row.project, annotator=annotator)
        assert row.enrolment == enrolment
        assert row.progress == (
            annotator_progress(project=row.project, annotator=annotator) if enrolment else None
        )
    assert [row.project for row in rows if row.enrolment is None] == [campaign.stranger]


def test_annotator_project_rows_joined_none_one_query(
    campaign: Campaign, django_assert_num_queries
) -> None:
    newcomer = make_user(Role.ANNOTATOR)
    projects = list(project_list_for(user=newcomer))

    with django_assert_num_queries(1):
        rows = annotator_project_rows(annotator=newcomer, projects=projects)

    assert rows and all(row.enrolment is None and row.progress is None for row in rows)


def test_project_progress_for_many_projects_equals_each_project_alone(
    campaign: Campaign, django_assert_num_queries
) -> None:
    with django_assert_num_queries(4):
        together = project_progress_for(projects=campaign.projects)

    assert together == {
        project.pk: project_progress(project=project) for project in campaign.projects
    }
    mixed = together[campaign.projects[2].pk]
    # Eight regular items and four control items, one of each taken down.
    assert (mixed.items, mixed.control_items) == (7, 3)


def test_project_progress_for_no_projects_no_query(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert project_progress_for(projects=[]) == {}


def held_until(project: Project, seconds: int) -> Assignment:
    """A new annotator takes the next item and holds it ``seconds`` more, by the database."""
    assignment = assignment_next(project=project, annotator=make_enrolled_annotator(project))
    assert assignment is not None
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=Now() + timedelta(seconds=seconds)
    )
    assignment.refresh_from_db()
    return assignment


def test_assignment_wait_hint_items_held_by_others_earliest_deadline_by_database_clock(
    host_clock, django_assert_num_queries
) -> None:
    project = open_project(make_user(Role.RESEARCHER), 2, k=1)
    held_until(project, 300)
    first_free = held_until(project, 120)
    newcomer = make_enrolled_annotator(project)
    assert assignment_next(project=project, annotator=newcomer) is None
    host_clock(timedelta(seconds=40))  # this host's clock plays no part

    with django_assert_num_queries(1):
        wait = assignment_wait_hint(project=project, annotator=newcomer)

    assert wait is not None
    assert wait.retry_at == first_free.expires_at
    assert 110 <= wait.retry_after_seconds <= 120
    assert wait.retry_after_minutes == 2


def test_assignment_wait_hint_deadline_passed_not_yet_expired_says_now() -> None:
    owner = make_user(Role.RESEARCHER)
    project = open_project(owner, 1, k=1)
    held_until(project, -5)

    wait = assignment_wait_hint(project=project, annotator=make_enrolled_annotator(project))

    # The next request for an item expires it and may hand it out: come back at once.
    assert wait is not None
    assert (wait.retry_after_seconds, wait.retry_after_minutes) == (0, 1)


def test_assignment_wait_hint_own_expired_item_held_by_another_counts() -> None:
    owner = make_user(Role.RESEARCHER)
    project = open_project(owner, 1, k=1)
    annotator = make_enrolled_annotator(project)
    mine = assignment_next(project=project, annotator=annotator)
    assert mine is not None
    expire(mine)
    retaken = held_until(project, 60)
    assert retaken.item_id == mine.item_id

    wait = assignment_wait_hint(project=project, annotator=annotator)

    # An item whose assignment expired may be given to the same annotator again.
    assert wait is not None and wait.retry_at == retaken.expires_at


def test_assignment_wait_hint_nothing_to_wait_for_returns_none() -> None:
    owner = make_user(Role.RESEARCHER)
    project = open_project(owner, 1, k=2)
    annotator = make_enrolled_annotator(project)
    label(project, annotator)
    held_until(project, 60)  # the item's other slot: not one this annotator may take
    add_control_items(project, 1, expected_value=NEITHER)
    done = open_project(owner, 1, k=1)
    label(done, make_enrolled_annotator(done))

    assert assignment_next(project=project, annotator=annotator) is None
    assert assignment_wait_hint(project=project, annotator=annotator) is None
    assert assignment_wait_hint(project=done, annotator=make_enrolled_annotator(done)) is None
