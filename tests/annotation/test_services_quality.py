"""Quality control: control items (gold, attention checks) and "most contested first"."""

import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from annotation.models import (
    Annotation,
    Assignment,
    AssignmentStrategy,
    ControlKind,
    Enrolment,
    Item,
    Project,
    ProjectStatus,
)
from annotation.schemas import HATE_SPEECH_SCHEMA
from annotation.selectors import annotator_progress, control_accuracy, project_progress
from annotation.services import (
    annotation_submit,
    annotation_update,
    assignment_next,
    assignment_skip,
    assignments_expire,
    enrolment_withdraw,
    item_control_set,
    project_transition,
    project_update,
)
from core.errors import Conflict, PermissionDenied, ValidationFailed
from core.models import Role, User
from provenance.models import AuditEvent
from tests.annotation.factories import (
    HATEFUL,
    NEITHER,
    OFFENSIVE,
    add_control_items,
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db

MULTI_SCHEMA = {
    "kind": "multi_label",
    "choices": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
    "min_selected": 1,
    "max_selected": 2,
}


@pytest.fixture
def seeded_random() -> Iterator[None]:
    """Control mixing and shuffle keys draw from ``random``: make a test's draws repeatable."""
    state = random.getstate()
    random.seed(20240611)
    yield
    random.setstate(state)


def direct_entropy(answers: list[Any], n_categories: int) -> float:
    """Normalised Shannon entropy, written out independently of the service."""
    if len(answers) < 2:
        return 0.0
    counts = Counter(answers)
    shares = [n / len(answers) for n in counts.values()]
    return -sum(p * math.log(p) for p in shares) / math.log(n_categories)


def live_values(item: Item) -> list[Any]:
    return list(
        Annotation.objects.filter(item=item, withdrawn=False).values_list("value", flat=True)
    )


def entropy(item: Item) -> float:
    return Item.objects.get(pk=item.pk).label_entropy


def label_item(project: Project, annotator: User, item: Item, value: Any) -> Annotation:
    """Label one chosen item: skip whatever else the annotator is offered first."""
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        if assignment.item_id == item.pk:
            return annotation_submit(annotator=annotator, item=item, value=value).annotation
        assignment_skip(assignment=assignment, annotator=annotator)
    raise AssertionError(f"item {item.pk} was never offered")


def neither(item: Item) -> str:
    return NEITHER


def label_next(
    project: Project, annotator: User, answer: Callable[[Item], Any] = neither
) -> Item | None:
    """Label whatever comes next; a second offer of one item would fail here."""
    assignment = assignment_next(project=project, annotator=annotator)
    if assignment is None:
        return None
    result = annotation_submit(
        annotator=annotator, item=assignment.item, value=answer(assignment.item)
    )
    assert result.created
    return assignment.item


def label_until_done(
    project: Project, annotator: User, answer: Callable[[Item], Any] = neither
) -> list[Item]:
    given = []
    while (item := label_next(project, annotator, answer)) is not None:
        given.append(item)
    return given


def label_in_turns(project: Project, annotators: list[User]) -> None:
    """Annotators take turns, one label each, until nothing is left for any of them."""
    active = list(annotators)
    while active:
        active = [a for a in active if label_next(project, a) is not None]


def control_slots(controls: list[Item]) -> set[int]:
    return set(
        Item.objects.filter(pk__in=[c.pk for c in controls]).values_list("slots_taken", flat=True)
    )


def open_project_with_controls(
    n_regular: int, n_control: int, *, k: int = 3, control_rate: float = 0.0, **fields: Any
) -> tuple[Project, list[Item]]:
    project = make_project(k=k, control_rate=control_rate, **fields)
    add_text_items(project, n_regular)
    controls = add_control_items(project, n_control, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    return project, controls


# ---------------------------------------------------------------- item_control_set


def test_item_control_set_marks_gold_with_answer_and_audits() -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)

    marked = item_control_set(
        item=item, actor=project.owner, control=ControlKind.GOLD, expected_value=OFFENSIVE
    )

    stored = Item.objects.get(pk=item.pk)
    assert (marked.control, stored.control, stored.expected_value) == ("gold", "gold", OFFENSIVE)
    (event,) = AuditEvent.objects.filter(action="item.control_set")
    assert event.object_id == str(item.pk)
    assert event.payload["control"] == "gold"
    assert event.payload["expected_value"] == OFFENSIVE
    assert event.payload["previous"] == {"control": "", "expected_value": None}


@pytest.mark.parametrize("value", ["spam", "", 2, ["hateful"], "Hateful"])
def test_item_control_set_answer_outside_schema_invalid_label(value: object) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)

    with pytest.raises(ValidationFailed) as caught:
        item_control_set(
            item=item, actor=project.owner, control=ControlKind.GOLD, expected_value=value
        )

    assert caught.value.code == "invalid_label"
    assert Item.objects.get(pk=item.pk).control == ""


@pytest.mark.parametrize(
    ("control", "expected_value", "code"),
    [
        ("gold", None, "expected_value_required"),
        ("attention", None, "expected_value_required"),
        ("", NEITHER, "unexpected_expected_value"),
        ("trap", NEITHER, "invalid_control"),
    ],
)
def test_item_control_set_inconsistent_kind_and_answer_rejected(
    control: str, expected_value: object, code: str
) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)

    with pytest.raises(ValidationFailed) as caught:
        item_control_set(
            item=item, actor=project.owner, control=control, expected_value=expected_value
        )

    assert caught.value.code == code
    assert not AuditEvent.objects.filter(action="item.control_set").exists()


def test_item_control_set_multi_label_answer_stored_in_schema_order() -> None:
    project = make_project(preset="hate_speech", label_schema=MULTI_SCHEMA)
    (item,) = add_text_items(project, 1)

    item_control_set(
        item=item, actor=project.owner, control=ControlKind.ATTENTION, expected_value=["c", "a"]
    )

    assert Item.objects.get(pk=item.pk).expected_value == ["a", "c"]


def test_item_control_set_back_to_regular_clears_answer() -> None:
    project = make_project()
    (item,) = add_control_items(project, 1, expected_value=HATEFUL)

    item_control_set(item=item, actor=project.owner, control=ControlKind.NONE)

    stored = Item.objects.get(pk=item.pk)
    assert (stored.control, stored.expected_value) == ("", None)


def test_item_control_set_labeled_item_cannot_change_kind() -> None:
    project = make_open_project(1, k=2)
    annotator = make_enrolled_annotator(project)
    item = Item.objects.get(project=project)
    label_item(project, annotator, item, NEITHER)

    with pytest.raises(Conflict) as caught:
        item_control_set(
            item=item, actor=project.owner, control=ControlKind.GOLD, expected_value=NEITHER
        )

    assert caught.value.code == "item_in_use"
    assert Item.objects.get(pk=item.pk).control == ""


def test_item_control_set_held_item_cannot_change_kind() -> None:
    project = make_open_project(1, k=2)
    item = Item.objects.get(project=project)
    assert assignment_next(project=project, annotator=make_enrolled_annotator(project))

    with pytest.raises(Conflict) as caught:
        item_control_set(
            item=item, actor=project.owner, control=ControlKind.GOLD, expected_value=NEITHER
        )

    assert caught.value.code == "item_in_use"


def test_item_control_set_answer_of_answered_control_item_correctable(
    seeded_random: None,
) -> None:
    project, (control,) = open_project_with_controls(10, 1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)
    label_until_done(project, annotator)
    assert Annotation.objects.filter(item=control).exists()

    item_control_set(
        item=control, actor=project.owner, control=ControlKind.ATTENTION, expected_value=NEITHER
    )

    stored = Item.objects.get(pk=control.pk)
    assert (stored.control, stored.expected_value) == ("attention", NEITHER)
    (row,) = control_accuracy(project=project)
    assert (row.kind, row.n, row.correct) == ("attention", 1, 1)


def test_item_control_set_closed_project_conflict() -> None:
    project = make_open_project(1)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)
    item = Item.objects.get(project=project)

    with pytest.raises(Conflict) as caught:
        item_control_set(
            item=item, actor=project.owner, control=ControlKind.GOLD, expected_value=NEITHER
        )

    assert caught.value.code == "project_closed"


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.ANNOTATOR, Role.AUDITOR])
def test_item_control_set_not_owner_denied(role: str) -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)

    with pytest.raises(PermissionDenied):
        item_control_set(
            item=item, actor=make_user(role), control=ControlKind.GOLD, expected_value=NEITHER
        )

    assert Item.objects.get(pk=item.pk).control == ""


def test_item_control_set_staff_allowed() -> None:
    project = make_project()
    (item,) = add_text_items(project, 1)
    staff = make_user(Role.RESEARCHER, is_staff=True)

    item_control_set(item=item, actor=staff, control=ControlKind.GOLD, expected_value=NEITHER)

    assert Item.objects.get(pk=item.pk).control == "gold"


def test_project_update_schema_that_rejects_a_control_answer_refused() -> None:
    project = make_project()
    add_control_items(project, 1, expected_value=HATEFUL)
    schema = {"kind": "nominal", "choices": [{"value": "yes"}, {"value": "no"}]}

    with pytest.raises(ValidationFailed) as caught:
        project_update(project=project, actor=project.owner, data={"label_schema": schema})

    assert caught.value.code == "control_answers_misfit"
    assert Project.objects.get(pk=project.pk).label_schema["choices"][0]["value"] == HATEFUL


def test_project_update_strategy_and_control_rate_editable_while_open() -> None:
    project = make_open_project(1)

    project_update(
        project=project,
        actor=project.owner,
        data={"assignment_strategy": "most_contested", "control_rate": 0.2},
    )

    stored = Project.objects.get(pk=project.pk)
    assert (stored.assignment_strategy, stored.control_rate) == ("most_contested", 0.2)


@pytest.mark.parametrize("data", [{"control_rate": 0.6}, {"control_rate": -0.1}])
def test_project_update_control_rate_outside_range_rejected(data: dict[str, Any]) -> None:
    project = make_project()

    with pytest.raises(ValidationFailed):
        project_update(project=project, actor=project.owner, data=data)

    assert Project.objects.get(pk=project.pk).control_rate == 0.0


# ---------------------------------------------------------------- mixing control items in


def test_assignment_next_control_rate_zero_never_gives_control_items() -> None:
    project, controls = open_project_with_controls(6, 6, k=1, control_rate=0.0)
    annotator = make_enrolled_annotator(project)

    given = label_until_done(project, annotator)

    assert len(given) == 6
    assert all(item.control == "" for item in given)
    assert not Assignment.objects.filter(item__in=controls).exists()


def test_assignment_next_control_rate_high_mixes_in_but_never_after_regular_run_out(
    seeded_random: None,
) -> None:
    project, controls = open_project_with_controls(12, 30, k=1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)

    given = label_until_done(project, annotator)

    kinds = [item.control for item in given]
    assert kinds.count("") == 12
    assert 0 < kinds.count("gold") < 30  # unseen control items were left over
    assert kinds[-1] == ""  # no control item once the regular ones were done
    assert assignment_next(project=project, annotator=annotator) is None


def test_assignment_next_control_items_only_left_returns_none(seeded_random: None) -> None:
    project, _ = open_project_with_controls(1, 5, k=1, control_rate=0.5)
    label_until_done(project, make_enrolled_annotator(project))
    newcomer = make_enrolled_annotator(project)

    # The regular item is fully labeled: the newcomer gets nothing, control items included.
    for _ in range(10):
        assert assignment_next(project=project, annotator=newcomer) is None
    assert not Assignment.objects.filter(annotator=newcomer).exists()


def test_assignment_next_each_control_item_at_most_once_per_annotator(
    seeded_random: None,
) -> None:
    project, controls = open_project_with_controls(40, 3, k=3, control_rate=0.5)
    annotators = [make_enrolled_annotator(project) for _ in range(3)]

    for annotator in annotators:
        label_until_done(project, annotator)

    per_pair = Counter(
        Annotation.objects.filter(item__in=controls).values_list("item_id", "annotator_id")
    )
    assert per_pair and set(per_pair.values()) == {1}
    # Three annotators, 40 regular items each: every one met all three control items.
    assert len(per_pair) == 9


def test_assignment_next_control_item_never_consumes_slots(seeded_random: None) -> None:
    project, controls = open_project_with_controls(20, 2, k=1, control_rate=0.5)

    label_in_turns(project, [make_enrolled_annotator(project) for _ in range(2)])

    # Regular items got exactly k labels; both annotators answered both control items
    # (beyond k) and those still hold no slot.
    regular = Item.objects.filter(project=project, control="")
    assert set(regular.values_list("slots_taken", flat=True)) == {1}
    assert Annotation.objects.filter(item__in=regular).count() == 20
    assert Annotation.objects.filter(item__in=controls).count() == 4
    assert control_slots(controls) == {0}


def test_control_assignment_skip_expiry_and_withdrawal_leave_no_slot_trace(
    seeded_random: None,
) -> None:
    project, controls = open_project_with_controls(30, 3, k=2, control_rate=0.5)
    skipper, idler, leaver = (make_enrolled_annotator(project) for _ in range(3))

    def next_control(annotator: User) -> Assignment:
        while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
            if assignment.item.control:
                return assignment
            annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
        raise AssertionError("no control item was mixed in")

    assignment_skip(assignment=next_control(skipper), annotator=skipper)
    idle = next_control(idler)
    Assignment.objects.filter(pk=idle.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignments_expire(project_id=project.pk) == 1
    held = next_control(leaver)
    annotation_submit(annotator=leaver, item=held.item, value=HATEFUL)
    next_control(leaver)  # left open
    enrolment_withdraw(enrolment=Enrolment.objects.get(annotator=leaver), actor=leaver)

    assert control_slots(controls) == {0}


def test_assignment_next_expired_control_item_not_given_again(seeded_random: None) -> None:
    project, (control,) = open_project_with_controls(30, 1, k=1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        if assignment.item_id == control.pk:
            break
        annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
    assert assignment is not None
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    given = label_until_done(project, annotator)

    assert control.pk not in {item.pk for item in given}
    assert len(given) > 20  # plenty of regular items came after it
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.EXPIRED


def test_annotation_submit_expired_control_assignment_accepted_without_slot(
    seeded_random: None,
) -> None:
    project, controls = open_project_with_controls(20, 1, k=1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        if assignment.item.control:
            break
        annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
    assert assignment is not None and assignment.item_id == controls[0].pk
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assignments_expire(project_id=project.pk)

    result = annotation_submit(annotator=annotator, item=assignment.item, value=HATEFUL)

    assert result.created
    assert Item.objects.get(pk=controls[0].pk).slots_taken == 0
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED


# ---------------------------------------------------------------- progress and accuracy


def test_project_progress_counts_control_items_and_labels_apart(seeded_random: None) -> None:
    project, controls = open_project_with_controls(10, 2, k=1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)
    label_until_done(project, annotator)
    answered = Annotation.objects.filter(item__in=controls).count()
    assert answered  # the seed mixes at least one in

    progress = project_progress(project=project)

    assert (progress.items, progress.items_complete, progress.labels) == (10, 10, 10)
    assert progress.labels_per_item == {1: 10}
    assert (progress.control_items, progress.control_labels) == (2, answered)


def test_annotator_progress_remaining_counts_control_items_alike() -> None:
    project, _ = open_project_with_controls(3, 5, k=1)

    progress = annotator_progress(project=project, annotator=make_enrolled_annotator(project))

    assert progress.remaining == 8


def test_annotator_progress_drops_by_one_whatever_kind_of_item_is_handed_out(
    seeded_random: None,
) -> None:
    """Watching ``remaining`` (or the label page's "x of N") must not tell gold items apart:
    a script did, flagging all 4 gold items among 40 assignments."""
    project, controls = open_project_with_controls(6, 3, k=1, control_rate=0.5)
    annotator = make_enrolled_annotator(project)
    control_ids = {item.pk for item in controls}
    drops: dict[bool, set[int]] = {True: set(), False: set()}
    while True:
        before = annotator_progress(project=project, annotator=annotator)
        assignment = assignment_next(project=project, annotator=annotator)
        if assignment is None:
            break
        after = annotator_progress(project=project, annotator=annotator)
        if after.remaining:  # the last regular item ends the project for this annotator
            drops[assignment.item_id in control_ids].add(before.remaining - after.remaining)
        annotation_submit(annotator=annotator, item=assignment.item, value=HATEFUL)

    assert drops[True], "the seed mixes at least one control item in"
    assert drops[True] == drops[False] == {1}


def test_control_accuracy_per_annotator_and_kind_withdrawn_excluded(
    seeded_random: None,
) -> None:
    project = make_project(k=3, control_rate=0.5)
    add_text_items(project, 30)
    gold = add_control_items(project, 2, expected_value=HATEFUL)
    add_control_items(project, 1, kind=ControlKind.ATTENTION, expected_value=NEITHER, start=20_000)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    careful, careless, leaver = (make_enrolled_annotator(project) for _ in range(3))
    right = {"gold": HATEFUL, "attention": NEITHER, "": NEITHER}
    label_until_done(project, careful, lambda item: right[item.control])
    for annotator in (careless, leaver):
        label_until_done(project, annotator, lambda item: OFFENSIVE)
    assert Annotation.objects.filter(item__control__in=["gold", "attention"]).count() == 9
    # One of the careless annotator's gold answers was right after all.
    careless_gold = Annotation.objects.get(annotator=careless, item=gold[0])
    annotation_update(annotation=careless_gold, annotator=careless, value=HATEFUL)
    enrolment_withdraw(enrolment=Enrolment.objects.get(annotator=leaver), actor=leaver)

    rows = control_accuracy(project=project)

    by_key = {(row.pseudonym, row.kind): (row.n, row.correct, row.accuracy) for row in rows}
    assert by_key == {
        (careful.pseudonym, "gold"): (2, 2, 1.0),
        (careful.pseudonym, "attention"): (1, 1, 1.0),
        (careless.pseudonym, "gold"): (2, 1, 0.5),
        (careless.pseudonym, "attention"): (1, 0, 0.0),
    }
    assert [(row.pseudonym, row.kind) for row in rows] == sorted(by_key)


def test_control_accuracy_multi_label_compared_as_sets(seeded_random: None) -> None:
    project = make_project(preset="hate_speech", label_schema=MULTI_SCHEMA, control_rate=0.5)
    add_text_items(project, 10)
    (control,) = add_control_items(project, 1, expected_value=["a", "b"])
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    right, wrong = make_enrolled_annotator(project), make_enrolled_annotator(project)
    label_item(project, right, control, ["b", "a"])
    label_item(project, wrong, control, ["a"])

    rows = {row.pseudonym: row.correct for row in control_accuracy(project=project)}

    assert rows == {right.pseudonym: 1, wrong.pseudonym: 0}


# ---------------------------------------------------------------- label entropy


def test_label_entropy_maintained_on_submit_edit_and_withdraw() -> None:
    project = make_open_project(1, k=4)
    item = Item.objects.get(project=project)
    annotators = [make_enrolled_annotator(project) for _ in range(4)]
    n_categories = len(HATE_SPEECH_SCHEMA.values)

    def assert_current() -> None:
        assert entropy(item) == pytest.approx(direct_entropy(live_values(item), n_categories))

    labels = []
    for annotator, value in zip(annotators, [HATEFUL, HATEFUL, OFFENSIVE, NEITHER], strict=True):
        labels.append(label_item(project, annotator, item, value))
        assert_current()
    assert entropy(item) > 0
    annotation_update(annotation=labels[3], annotator=annotators[3], value=HATEFUL)
    assert_current()
    for annotator in annotators[2:]:
        enrolment_withdraw(enrolment=Enrolment.objects.get(annotator=annotator), actor=annotator)
        assert_current()
    assert entropy(item) == 0.0  # two agreeing labels left


def test_label_entropy_single_label_and_full_disagreement_bounds() -> None:
    project = make_open_project(1, k=3)
    item = Item.objects.get(project=project)
    for index, value in enumerate([HATEFUL, OFFENSIVE, NEITHER]):
        label_item(project, make_enrolled_annotator(project), item, value)
        if index == 0:
            assert entropy(item) == 0.0
    assert entropy(item) == pytest.approx(1.0)


def test_label_entropy_multi_label_uses_label_sets() -> None:
    project = make_project(preset="hate_speech", label_schema=MULTI_SCHEMA, k=3)
    add_text_items(project, 1)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    item = Item.objects.get(project=project)
    for value in (["a", "b"], ["b", "a"], ["c"]):
        label_item(project, make_enrolled_annotator(project), item, value)

    # Sets of one or two of three choices: 3 + 3 = 6 categories; {a, b} twice, {c} once.
    expected = direct_entropy(["ab", "ab", "c"], 6)
    assert entropy(item) == pytest.approx(expected)


def test_label_entropy_free_text_stays_zero() -> None:
    project = make_project(label_schema={"kind": "free_text"}, k=2)
    add_text_items(project, 1)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    item = Item.objects.get(project=project)
    for value in ("one reading", "another reading"):
        label_item(project, make_enrolled_annotator(project), item, value)

    assert entropy(item) == 0.0


# ---------------------------------------------------------------- most contested first


@pytest.fixture
def strict_contested_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """One candidate: the draw is the strategy's order itself, so the order can be tested."""
    monkeypatch.setattr("annotation.services.assignment.CONTESTED_CANDIDATES", 1)


def contested_project() -> tuple[Project, Item, Item, Item]:
    """Three items, k=3: one with two disagreeing labels, one with two agreeing, one bare."""
    project = make_open_project(3, k=3, assignment_strategy=AssignmentStrategy.MOST_CONTESTED)
    contested, agreed, bare = Item.objects.filter(project=project).order_by("pk")
    for item, values in ((contested, [HATEFUL, NEITHER]), (agreed, [OFFENSIVE, OFFENSIVE])):
        for value in values:
            label_item(project, make_enrolled_annotator(project), item, value)
    # Skips released their slots: only the labels hold slots now.
    assert [entropy(contested) > 0, entropy(agreed), entropy(bare)] == [True, 0.0, 0.0]
    return project, contested, agreed, bare


@pytest.mark.usefixtures("strict_contested_order")
def test_assignment_next_most_contested_gives_highest_entropy_item_first() -> None:
    project, contested, _, _ = contested_project()

    assignment = assignment_next(project=project, annotator=make_enrolled_annotator(project))

    assert assignment is not None and assignment.item_id == contested.pk


@pytest.mark.usefixtures("strict_contested_order")
def test_assignment_next_most_contested_equal_entropy_goes_to_fewest_labels() -> None:
    project, contested, agreed, bare = contested_project()
    label_item(project, make_enrolled_annotator(project), contested, OFFENSIVE)  # now full

    offered = [
        assignment_next(project=project, annotator=make_enrolled_annotator(project))
        for _ in range(4)
    ]

    # The bare item first (fewest labels), then both fill up level by level.
    assert [a.item_id for a in offered if a is not None][:1] == [bare.pk]
    assert Counter(a.item_id for a in offered if a is not None) == {bare.pk: 3, agreed.pk: 1}


def test_assignment_next_most_contested_draws_at_random_among_top_candidates(
    seeded_random: None,
) -> None:
    """The first items an annotator gets are not simply the contested ones, which would
    tell them where others disagreed (a script flagged them with no false positive)."""
    project = make_open_project(20, k=3, assignment_strategy=AssignmentStrategy.MOST_CONTESTED)
    items = list(Item.objects.filter(project=project).order_by("pk"))
    contested = {item.pk for item in items[:3]}
    for item in items[:3]:
        for value in (HATEFUL, NEITHER):
            label_item(project, make_enrolled_annotator(project), item, value)
    assert all(entropy(item) > 0 for item in items[:3])

    first_three = []
    for _ in range(6):
        annotator = make_enrolled_annotator(project)
        taken = []
        for _ in range(3):
            assignment = assignment_next(project=project, annotator=annotator)
            assert assignment is not None
            taken.append(assignment.item_id)
            assignment_skip(assignment=assignment, annotator=annotator)
        first_three.append(set(taken))

    # Drawn from the 10 top candidates: all six annotators getting exactly the contested
    # three first has probability (1/120)^6.
    assert any(taken != contested for taken in first_three)


def test_assignment_next_least_labeled_ignores_entropy() -> None:
    project, contested, _, bare = contested_project()
    project_update(
        project=project,
        actor=project.owner,
        data={"assignment_strategy": AssignmentStrategy.LEAST_LABELED},
    )

    assignment = assignment_next(project=project, annotator=make_enrolled_annotator(project))

    assert assignment is not None and assignment.item_id == bare.pk
