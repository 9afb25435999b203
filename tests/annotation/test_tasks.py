"""Annotation tasks: registered in every process under the names services enqueue, and
the scheduled sweep that gives abandoned assignments' slots back."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models.functions import Now
from django.utils import timezone

from annotation import task_names
from annotation.models import Assignment, Item, Project, ProjectStatus
from annotation.services import assignment_next, project_transition
from annotation.tasks import assignments_expire_sweep_task
from config.celery import app as celery_app
from tests.annotation.factories import make_enrolled_annotator, make_open_project

REPO_ROOT = Path(__file__).resolve().parents[2]

# A fresh process that sets Django up and imports the enqueuing services, never the
# tasks module: what a web process does before its first import or refresh.
REGISTERED_NAMES = """
import sys
import django
django.setup()
print("heavy", "pandas" in sys.modules or "matplotlib" in sys.modules)
from celery import current_app
from annotation import task_names
for name in (task_names.IMPORT_BATCH_RUN_TASK, task_names.AGREEMENT_ANALYSIS_TASK):
    print(name, name in current_app.tasks)
"""


def test_enqueued_task_names_registered_without_importing_tasks_module() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(  # noqa: S603 - fixed interpreter and code, test input only
        [sys.executable, "-c", REGISTERED_NAMES],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    # Registering the tasks (AnnotationConfig.ready) loads neither pandas nor matplotlib.
    assert result.stdout.split() == [
        "heavy",
        "False",
        task_names.IMPORT_BATCH_RUN_TASK,
        "True",
        task_names.AGREEMENT_ANALYSIS_TASK,
        "True",
    ]


def test_assignments_expire_sweep_beat_schedule_runs_registered_task_every_few_minutes() -> None:
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    [entry] = [
        entry for entry in schedule.values() if entry["task"] == assignments_expire_sweep_task.name
    ]

    assert assignments_expire_sweep_task.name in celery_app.tasks
    assert entry["schedule"] <= 10 * 60
    assert "kwargs" not in entry and "args" not in entry


def _held_then_abandoned(project: Project) -> Assignment:
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    Assignment.objects.filter(pk=assignment.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    return assignment


@pytest.mark.django_db
def test_assignments_expire_sweep_task_open_projects_slots_returned_without_next_request() -> None:
    quiet, busy = make_open_project(3, k=1), make_open_project(3, k=1)
    still_held = assignment_next(project=busy, annotator=make_enrolled_annotator(busy))
    assert still_held is not None
    # Nobody asks for a next item after these are abandoned (a request would expire them).
    abandoned = [_held_then_abandoned(quiet), _held_then_abandoned(busy)]

    expired = assignments_expire_sweep_task.delay().get()

    assert expired == 2
    statuses = dict(Assignment.objects.values_list("pk", "status"))
    assert [statuses[a.pk] for a in abandoned] == [Assignment.Status.EXPIRED] * 2
    assert statuses[still_held.pk] == Assignment.Status.OPEN
    assert Item.objects.get(pk=abandoned[0].item_id).slots_taken == 0
    assert Item.objects.get(pk=still_held.item_id).slots_taken == 1


@pytest.mark.django_db
def test_assignments_expire_sweep_task_worker_clock_ahead_expires_only_past_database_deadlines(
    host_clock,
) -> None:
    project = make_open_project(2, k=1)
    late, in_time = make_enrolled_annotator(project), make_enrolled_annotator(project)
    abandoned = assignment_next(project=project, annotator=late)
    held = assignment_next(project=project, annotator=in_time)
    assert abandoned is not None and held is not None
    Assignment.objects.filter(pk=abandoned.pk).update(expires_at=Now() - timedelta(seconds=1))
    Assignment.objects.filter(pk=held.pk).update(expires_at=Now() + timedelta(seconds=20))
    host_clock(timedelta(seconds=40))  # the worker's clock runs ahead of the database's

    # What beat runs on its schedule, called as the worker calls it.
    expired = assignments_expire_sweep_task()

    assert expired == 1
    statuses = dict(Assignment.objects.values_list("pk", "status"))
    assert statuses == {abandoned.pk: Assignment.Status.EXPIRED, held.pk: Assignment.Status.OPEN}
    assert Item.objects.get(pk=abandoned.item_id).slots_taken == 0
    assert Item.objects.get(pk=held.item_id).slots_taken == 1


@pytest.mark.django_db
def test_assignments_expire_sweep_task_run_twice_frees_each_slot_once() -> None:
    project = make_open_project(3, k=2)
    abandoned = _held_then_abandoned(project)

    assert assignments_expire_sweep_task.delay().get() == 1
    assert assignments_expire_sweep_task.delay().get() == 0
    assert Item.objects.get(pk=abandoned.item_id).slots_taken == 0


@pytest.mark.django_db
def test_assignments_expire_sweep_task_closed_project_left_alone() -> None:
    project = make_open_project(3, k=1)
    abandoned = _held_then_abandoned(project)
    project_transition(project=project, actor=project.owner, status=ProjectStatus.CLOSED)

    assert assignments_expire_sweep_task.delay().get() == 0
    assert Assignment.objects.get(pk=abandoned.pk).status == Assignment.Status.OPEN
