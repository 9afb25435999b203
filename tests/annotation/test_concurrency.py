"""Concurrency on PostgreSQL: many annotators at once never over-fill, duplicate or lose labels.

50 concurrent identical submissions give one row and no 5xx; a submission racing a
withdrawal ends consistent; 32 annotators labeling at once never over-fill an item beyond
k. Each thread uses its own database connection
and closes it when done; the tests commit for real (``transaction=True``).
"""

import math
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

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
from annotation.services import (
    SubmitResult,
    annotation_submit,
    assignment_next,
    enrolment_create,
    enrolment_withdraw,
    project_transition,
)
from core.errors import Conflict, PermissionDenied
from core.models import Role, User
from provenance.models import AuditEvent, ConsentRecord
from provenance.services import audit_chain_verify
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

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

JOIN_TIMEOUT_S = 240


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


@dataclass
class Run:
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def errors(self) -> list[BaseException]:
        return [o.error for o in self.outcomes if o.error is not None]


def run_at_once(tasks: Sequence[Callable[[], Any]]) -> Run:
    """Start every task together, each in its own thread with its own connection."""
    start = threading.Barrier(len(tasks), timeout=60)
    run = Run([Outcome() for _ in tasks])

    def worker(index: int, task: Callable[[], Any]) -> None:
        try:
            start.wait()
            run.outcomes[index].value = task()
        except BaseException as error:  # reported to the test thread
            run.outcomes[index].error = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(index, task), name=f"chorus-test-{index}")
        for index, task in enumerate(tasks)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)
        assert not thread.is_alive(), f"{thread.name} did not finish"
    return run


def assert_slots_consistent(project: Project) -> None:
    """Every regular item's slot count equals its open assignments plus its live labels;
    control items take no slot."""
    controls = Item.objects.filter(project=project).exclude(control=ControlKind.NONE)
    assert set(controls.values_list("slots_taken", flat=True)) <= {0}
    items = Item.objects.filter(project=project, control=ControlKind.NONE).annotate(
        open_n=Count(
            "assignments", filter=Q(assignments__status=Assignment.Status.OPEN), distinct=True
        ),
        live_n=Count("annotations", filter=Q(annotations__withdrawn=False), distinct=True),
    )
    mismatched = [
        (item.pk, item.slots_taken, item.open_n, item.live_n)
        for item in items
        if item.slots_taken != item.open_n + item.live_n
    ]
    assert mismatched == []


# ---------------------------------------------------------------- 32 annotators, k=3


def label_until_done(project: Project, annotator: User) -> list[SubmitResult]:
    """One annotator's loop: next item, a seeded random label, until nothing is left."""
    rng = random.Random(annotator.pk)
    results = []
    while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
        results.append(
            annotation_submit(
                annotator=annotator,
                item=assignment.item,
                value=rng.choice(HATE_SPEECH_SCHEMA.values),
            )
        )
    return results


@pytest.mark.parametrize("strategy", AssignmentStrategy.values)
def test_assignment_and_submit_32_annotators_k3_no_overfill_duplicate_or_loss(
    strategy: str,
) -> None:
    n_items, k, n_annotators = 60, 3, 32
    project = make_open_project(n_items, k=k, assignment_strategy=strategy)
    annotators = [make_enrolled_annotator(project) for _ in range(n_annotators)]

    run = run_at_once([partial(label_until_done, project, a) for a in annotators])

    assert run.errors == []
    results = [result for outcome in run.outcomes for result in outcome.value]
    assert all(result.created for result in results)
    per_item = Counter(Annotation.objects.filter(project=project).values_list("item_id", flat=True))
    assert max(per_item.values()) <= k
    pairs = list(Annotation.objects.filter(project=project).values_list("item_id", "annotator_id"))
    assert len(pairs) == len(set(pairs))
    # Nothing lost: every acknowledged label is stored as acknowledged.
    stored = dict(Annotation.objects.filter(project=project).values_list("pk", "value"))
    assert {r.annotation.pk: r.annotation.value for r in results} == stored
    # 32 annotators are plenty for 60 items x 3: the campaign completes.
    assert len(stored) == n_items * k
    assert set(per_item.values()) == {k} and len(per_item) == n_items
    assert not Assignment.objects.filter(project=project, status=Assignment.Status.OPEN).exists()
    assert_slots_consistent(project)
    assert audit_chain_verify().ok
    assert_entropy_current(project)


@pytest.mark.parametrize("strategy", AssignmentStrategy.values)
def test_assignment_32_annotators_with_control_items_no_overfill_and_each_once(
    strategy: str,
) -> None:
    n_items, n_controls, k, n_annotators = 40, 4, 3, 32
    project = make_project(k=k, assignment_strategy=strategy, control_rate=0.5)
    add_text_items(project, n_items)
    controls = add_control_items(project, n_controls, expected_value=HATEFUL)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotators = [make_enrolled_annotator(project) for _ in range(n_annotators)]

    run = run_at_once([partial(label_until_done, project, a) for a in annotators])

    assert run.errors == []
    assert all(result.created for outcome in run.outcomes for result in outcome.value)
    regular = Annotation.objects.filter(project=project, item__control=ControlKind.NONE)
    per_item = Counter(regular.values_list("item_id", flat=True))
    assert set(per_item.values()) == {k} and len(per_item) == n_items
    control_pairs = list(
        Annotation.objects.filter(item__in=controls).values_list("item_id", "annotator_id")
    )
    assert control_pairs and len(control_pairs) == len(set(control_pairs))
    assert not Assignment.objects.filter(project=project, status=Assignment.Status.OPEN).exists()
    assert_slots_consistent(project)
    assert_entropy_current(project)


def assert_entropy_current(project: Project) -> None:
    """Every item's stored entropy equals the one computed from its committed labels."""
    n_categories = len(HATE_SPEECH_SCHEMA.values)
    for item in Item.objects.filter(project=project):
        values = list(
            Annotation.objects.filter(item=item, withdrawn=False).values_list("value", flat=True)
        )
        shares = [n / len(values) for n in Counter(values).values()] if len(values) > 1 else []
        expected = -sum(p * math.log(p) for p in shares) / math.log(n_categories)
        assert item.label_entropy == pytest.approx(expected), item.pk


def test_assignment_next_concurrent_expiry_frees_each_abandoned_slot_once() -> None:
    n_items, k = 20, 2
    project = make_open_project(n_items, k=k)
    ghosts = [make_enrolled_annotator(project) for _ in range(12)]
    for ghost in ghosts:
        assert assignment_next(project=project, annotator=ghost) is not None
    # The ghosts walk away: every one of their assignments is past its expiry.
    Assignment.objects.filter(annotator__in=ghosts).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    workers = [make_enrolled_annotator(project) for _ in range(16)]

    def label_until_done(annotator: User) -> int:
        done = 0
        while (assignment := assignment_next(project=project, annotator=annotator)) is not None:
            annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
            done += 1
        return done

    run = run_at_once([partial(label_until_done, a) for a in workers])

    assert run.errors == []
    assert sum(outcome.value for outcome in run.outcomes) == n_items * k
    statuses = set(Assignment.objects.filter(annotator__in=ghosts).values_list("status", flat=True))
    assert statuses == {Assignment.Status.EXPIRED}
    per_item = Counter(Annotation.objects.filter(project=project).values_list("item_id", flat=True))
    assert set(per_item.values()) == {k} and len(per_item) == n_items
    assert_slots_consistent(project)


def test_annotation_unique_constraint_refuses_second_row() -> None:
    project = make_open_project(1, k=3)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    annotation_submit(annotator=annotator, item=assignment.item, value=NEITHER)
    # Bypassing the service, the database itself refuses a duplicate (item, annotator).
    with pytest.raises(IntegrityError), transaction.atomic():
        Annotation.objects.create(
            project=project, item=assignment.item, annotator=annotator, value=HATEFUL
        )
    assert Annotation.objects.filter(item=assignment.item, annotator=annotator).count() == 1


# ---------------------------------------------------------------- 50 identical submissions


def assigned_item(n_items: int = 3) -> tuple[Project, User, Item]:
    project = make_open_project(n_items, k=3)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    return project, annotator, assignment.item


def test_annotation_submit_50_concurrent_same_pair_one_row_rest_replay_or_conflict() -> None:
    project, annotator, item = assigned_item()
    # Most threads repeat one answer; a few send a different one (a double-click after a
    # change of mind). Whichever commits first wins; the rest replay or conflict.
    values = [HATEFUL] * 40 + [OFFENSIVE] * 10
    random.Random(7).shuffle(values)

    run = run_at_once(
        [
            partial(annotation_submit, annotator=annotator, item=item, value=value)
            for value in values
        ]
    )

    unexpected = [e for e in run.errors if not isinstance(e, Conflict)]
    assert unexpected == []
    (stored,) = Annotation.objects.filter(item=item, annotator=annotator)
    created = [o.value for o in run.outcomes if o.value is not None and o.value.created]
    assert len(created) == 1 and created[0].annotation.pk == stored.pk
    for value, outcome in zip(values, run.outcomes, strict=True):
        if value == stored.value:
            assert outcome.error is None, outcome.error
            assert outcome.value.annotation.pk == stored.pk
        else:
            assert isinstance(outcome.error, Conflict)
            assert outcome.error.code == "already_labeled"
    assert len(AuditEvent.objects.filter(action="annotation.submit")) == 1
    assert Item.objects.get(pk=item.pk).slots_taken == 1
    assert_slots_consistent(project)


def test_annotation_api_50_concurrent_same_pair_one_row_zero_5xx() -> None:
    project, annotator, item = assigned_item()
    token = Token.objects.create(user=annotator).key
    values = [NEITHER] * 40 + [HATEFUL] * 10
    random.Random(11).shuffle(values)

    def post(value: str) -> tuple[int, dict[str, Any]]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post(
            "/api/v1/annotations/", {"item": item.pk, "value": value}, format="json"
        )
        return response.status_code, response.json()

    run = run_at_once([partial(post, value) for value in values])

    assert run.errors == []
    statuses = Counter(status for status, _ in (o.value for o in run.outcomes))
    assert set(statuses) <= {200, 201, 409}, statuses
    assert statuses[201] == 1
    (stored,) = Annotation.objects.filter(item=item, annotator=annotator)
    for value, outcome in zip(values, run.outcomes, strict=True):
        status, body = outcome.value
        if value == stored.value:
            assert status in (200, 201)
            assert body["id"] == stored.pk
        else:
            assert status == 409
            assert body["code"] == "already_labeled"
            assert set(body) == {"code", "message", "extra"}
    assert Item.objects.get(pk=item.pk).slots_taken == 1
    assert_slots_consistent(project)


# ---------------------------------------------------------------- submit racing withdraw


def test_annotation_submit_racing_withdraw_consistent_and_both_audited() -> None:
    rounds = 12
    project = make_open_project(rounds, k=1)
    pairs = []
    for _ in range(rounds):
        annotator = make_enrolled_annotator(project)
        assignment = assignment_next(project=project, annotator=annotator)
        assert assignment is not None
        pairs.append((annotator, assignment))

    tasks: list[Callable[[], Any]] = []
    for annotator, assignment in pairs:
        enrolment = Enrolment.objects.get(project=project, annotator=annotator)
        tasks.append(
            partial(annotation_submit, annotator=annotator, item=assignment.item, value=HATEFUL)
        )
        tasks.append(partial(enrolment_withdraw, enrolment=enrolment, actor=annotator))
    run = run_at_once(tasks)

    submitted = 0
    for index, (annotator, assignment) in enumerate(pairs):
        submit, withdraw = run.outcomes[2 * index], run.outcomes[2 * index + 1]
        assert withdraw.error is None, withdraw.error
        enrolment = Enrolment.objects.get(project=project, annotator=annotator)
        assert enrolment.withdrawn_at is not None
        assert ConsentRecord.objects.get(pk=enrolment.consent_id).withdrawn_at is not None
        withdraw_event = AuditEvent.objects.get(
            action="enrolment.withdraw", object_id=str(enrolment.pk)
        )
        submit_events = AuditEvent.objects.filter(action="annotation.submit", actor=annotator)
        annotation = Annotation.objects.filter(annotator=annotator).first()
        status = Assignment.objects.get(pk=assignment.pk).status
        if submit.error is None:
            # The label got in first, then the withdrawal took it out.
            submitted += 1
            assert annotation is not None and annotation.pk == submit.value.annotation.pk
            assert annotation.withdrawn and annotation.withdrawn_at == enrolment.withdrawn_at
            assert status == Assignment.Status.SUBMITTED
            assert submit_events.count() == 1
            assert submit_events.get().seq < withdraw_event.seq
            assert withdraw_event.payload["labels_withdrawn"] == 1
        else:
            # The withdrawal got in first; the label was refused and nothing was stored.
            assert isinstance(submit.error, PermissionDenied), submit.error
            assert submit.error.code == "withdrawn"
            assert annotation is None
            assert status == Assignment.Status.CANCELLED
            assert not submit_events.exists()
            assert withdraw_event.payload["labels_withdrawn"] == 0
    assert not Annotation.objects.filter(project=project, withdrawn=False).exists()
    assert set(Item.objects.filter(project=project).values_list("slots_taken", flat=True)) == {0}
    assert_slots_consistent(project)
    report = audit_chain_verify()
    assert report.ok, report.reason
    print(f"submit won {submitted} of {rounds} races")  # noqa: T201 - shown with -s


# ---------------------------------------------------------------- enrolment double click


def test_enrolment_create_concurrent_same_annotator_one_enrolment_one_consent() -> None:
    project = make_open_project(2)
    annotator = make_user(Role.ANNOTATOR)

    run = run_at_once([partial(enrolment_create, project=project, annotator=annotator)] * 8)

    assert run.errors == []
    (enrolment,) = Enrolment.objects.filter(project=project, annotator=annotator)
    assert {o.value.pk for o in run.outcomes} == {enrolment.pk}
    assert ConsentRecord.objects.filter(subject=annotator).count() == 1
    assert AuditEvent.objects.filter(action="enrolment.consent").count() == 1
    assert audit_chain_verify().ok
