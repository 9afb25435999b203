"""A real Celery worker consumes tasks from Redis (the PostgreSQL run only).

These tests commit their rows (transaction=True) so the worker process, which has its own
database connection, can read them; they poll the database for the worker's effect.
"""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation import ingest
from annotation.models import ImportBatch, Item, Project
from annotation.tasks import ping_task
from tests.annotation.factories import make_project

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def _wait_for(predicate, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the worker did not finish in time")


def test_ping_task_on_real_worker_reads_test_database(celery_worker_process) -> None:
    make_project()
    result = ping_task.delay()
    reply = result.get(timeout=30)
    assert reply["reply"] == "pong"
    assert reply["projects"] == Project.objects.count() == 1
    assert reply["task"] == result.id


def test_import_batch_on_real_worker_imports_all_rows(celery_worker_process) -> None:
    project = make_project()
    csv = b"external_id,text,license\nw1,first text,CC-BY-4.0\nw2,second text,CC0-1.0\n"
    batch = ingest.import_batch_create(
        project=project,
        actor=project.owner,
        upload=SimpleUploadedFile("texts.csv", csv, content_type="text/csv"),
    )

    def finished() -> bool:
        return ImportBatch.objects.get(pk=batch.pk).status in ("done", "failed")

    _wait_for(finished)
    batch.refresh_from_db()
    assert batch.status == "done", batch.errors
    assert batch.item_count == 2
    assert set(Item.objects.filter(project=project).values_list("external_id", flat=True)) == {
        "w1",
        "w2",
    }


def test_agreement_analysis_queued_job_computed_by_real_worker(celery_worker_process) -> None:
    from annotation.analysis import analysis_refresh
    from annotation.models import AgreementAnalysis
    from tests.annotation.analysis_data import make_labelled_project

    labelled = make_labelled_project(n_items=6, n_annotators=4)

    queued = analysis_refresh(project=labelled.project, filters={}, inline_limit=1)
    assert queued.status == AgreementAnalysis.Status.PENDING

    def finished() -> bool:
        return AgreementAnalysis.objects.get(pk=queued.pk).status in ("done", "failed")

    _wait_for(finished)
    analysis = AgreementAnalysis.objects.get(pk=queued.pk)
    assert analysis.status == "done", analysis.error
    assert analysis.attempts == 1 and analysis.dispatches == 1
    assert analysis.lease_owner == "" and analysis.finished_at is not None
    assert analysis.summary["n_annotators"] == 4


def test_job_sweep_task_on_real_worker_requeues_an_abandoned_batch(celery_worker_process) -> None:
    """A batch left running by a dead worker (lease expired) is queued again by the sweeper
    and imported by the worker."""
    from datetime import timedelta

    from django.utils import timezone

    from core.tasks import jobs_sweep_task

    project = make_project()
    csv = b"external_id,text,license\ns1,swept text,CC0-1.0\n"
    batch = ImportBatch(project=project, created_by=project.owner, original_name="x.csv")
    batch.upload.save("x.csv", SimpleUploadedFile("x.csv", csv), save=False)
    batch.status = "running"
    batch.lease_owner = "a-dead-worker"
    batch.lease_expires_at = timezone.now() - timedelta(minutes=1)
    batch.attempts = 1
    batch.save()

    jobs_sweep_task.apply_async()

    def finished() -> bool:
        return ImportBatch.objects.get(pk=batch.pk).status in ("done", "failed")

    _wait_for(finished)
    batch.refresh_from_db()
    assert batch.status == "done", batch.errors
    assert batch.attempts == 2 and batch.item_count == 1
