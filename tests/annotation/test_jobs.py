"""Import batches and analyses as jobs of ``core.jobs``: lease, takeover, outbox, sweeper.

In process (the embedded runtime's eager tasks); the same paths against a real worker,
PostgreSQL and Redis, with processes killed, are in tests/faults/.
"""

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, IntegrityError, OperationalError
from django.utils import timezone

from annotation import ingest
from annotation.models import ImportBatch, Item
from annotation.tasks import import_batch_run_task
from core.jobs import JobRun, LeaseLost, jobs_sweep
from core.jobs.lease import job_claim
from core.jobs.runner import job_run_here
from tests.annotation.conftest import csv_bytes

pytestmark = pytest.mark.django_db

CSV = csv_bytes("external_id,text,license", "a,one,CC0-1.0", "b,two,CC-BY-4.0")


class BrokerDown(ConnectionError):
    pass


@pytest.fixture
def broker(monkeypatch) -> Iterator[Any]:
    """The task's publishing as a fake broker: records messages, or fails while ``down``."""

    class Broker:
        down = False
        sent: list[int] = []

        def apply_async(self, args: tuple[Any, ...], **options: Any) -> None:
            if self.down:
                raise BrokerDown("Error 111 connecting to redis:6379. Connection refused.")
            self.sent.append(args[0])

    fake = Broker()
    fake.sent = []
    monkeypatch.setattr(import_batch_run_task, "apply_async", fake.apply_async)
    # A broker is configured: messages are published, not run in process.
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    yield fake
    current_app.conf.task_always_eager = eager


def _staged(text_project, data: bytes = CSV) -> ImportBatch:
    """A committed, pending batch whose message went nowhere."""
    batch = ImportBatch(project=text_project, created_by=text_project.owner, original_name="x")
    batch.upload.save("staged.csv", SimpleUploadedFile("x.csv", data), save=False)
    batch.save()
    return batch


def _stored(media_root: Path) -> list[str]:
    return sorted(p.name for p in media_root.rglob("*") if p.is_file())


# ---------------------------------------------------------------- lease


def test_job_claim_live_lease_refused_same_message_or_expired_lease_taken_over(text_project):
    batch = _staged(text_project)

    first = job_claim(ImportBatch, batch.pk, owner="task-1", lease_s=60)
    assert first is not None and first.status == "running" and first.attempts == 1
    assert first.lease_owner == "task-1"
    assert first.lease_expires_at is not None and first.lease_expires_at > timezone.now()
    # Someone else's live lease: not claimed.
    assert job_claim(ImportBatch, batch.pk, owner="task-2", lease_s=60) is None
    # The same message again (redelivered after its worker died): taken over at once.
    again = job_claim(ImportBatch, batch.pk, owner="task-1", lease_s=60)
    assert again is not None and again.attempts == 2
    # An expired lease: anyone takes it over.
    ImportBatch.objects.filter(pk=batch.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    taken = job_claim(ImportBatch, batch.pk, owner="task-2", lease_s=60)
    assert taken is not None and taken.lease_owner == "task-2" and taken.attempts == 3


def test_job_run_after_takeover_cannot_record_and_import_rolls_back(text_project):
    batch = _staged(text_project)
    claimed = job_claim(ImportBatch, batch.pk, owner="dead-worker", lease_s=60)
    assert claimed is not None
    run = JobRun(job=claimed, owner="dead-worker")
    # Another worker took the batch over meanwhile.
    ImportBatch.objects.filter(pk=batch.pk).update(lease_owner="successor")

    with pytest.raises(LeaseLost):
        ingest.import_batch_execute(run)

    assert Item.objects.count() == 0
    batch.refresh_from_db()
    assert batch.status == "running" and batch.lease_owner == "successor"


def test_redelivered_batch_whose_worker_died_is_taken_over_and_finishes(text_project, media_root):
    """The finding: a worker killed mid-import left the batch running; the redelivered task
    saw running and gave up, so the batch stayed running with its upload forever."""
    batch = _staged(text_project)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running",
        lease_owner="killed-worker",
        lease_expires_at=timezone.now() - timedelta(seconds=5),
        attempts=1,
    )

    assert job_run_here(ImportBatch, batch.pk) == "done"

    batch.refresh_from_db()
    assert (batch.status, batch.item_count, batch.attempts) == ("done", 2, 2)
    assert batch.lease_owner == "" and batch.lease_expires_at is None
    assert not batch.upload and _stored(media_root) == []


def test_batch_held_by_a_live_lease_is_left_to_its_worker(text_project):
    batch = _staged(text_project)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running",
        lease_owner="live-worker",
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )

    assert job_run_here(ImportBatch, batch.pk) == "held"

    batch.refresh_from_db()
    assert batch.status == "running" and batch.upload and Item.objects.count() == 0


def test_job_claimed_past_its_attempts_fails_with_message_and_upload_removed(
    text_project, media_root
):
    batch = _staged(text_project)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", lease_owner="t", lease_expires_at=None, attempts=3
    )

    assert job_run_here(ImportBatch, batch.pk) == "failed"

    batch.refresh_from_db()
    assert batch.status == "failed" and "Stopped after 3 attempts" in batch.error
    assert batch.errors[0]["code"] == "import_error"
    assert not batch.upload and _stored(media_root) == [] and Item.objects.count() == 0


# ---------------------------------------------------------------- errors while working


def test_transient_database_error_retried_then_done(text_project, monkeypatch):
    batch = _staged(text_project)
    original = ingest.batches.items_import
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            # Transient on SQLite; on PostgreSQL a closed connection is.
            raise OperationalError("database is locked")
        return original(**kwargs)

    monkeypatch.setattr(ingest.batches, "items_import", flaky)
    monkeypatch.setattr("core.jobs.runner.retry_countdown", lambda retries: 0.0)

    job_run_here(ImportBatch, batch.pk)

    batch.refresh_from_db()
    assert len(calls) == 2
    assert batch.status == "done" and batch.item_count == 2


@pytest.mark.parametrize(
    "error",
    [IntegrityError("duplicate key value"), ValueError("bad"), DatabaseError("syntax error")],
)
def test_permanent_error_fails_job_with_readable_message(text_project, monkeypatch, error):
    batch = _staged(text_project)

    def broken(**kwargs):
        raise error

    monkeypatch.setattr(ingest.batches, "items_import", broken)

    assert job_run_here(ImportBatch, batch.pk) == "failed"

    batch.refresh_from_db()
    assert batch.status == "failed" and "failed unexpectedly" in batch.error
    assert batch.errors[0]["code"] == "import_error" and not batch.upload


# ---------------------------------------------------------------- outbox


@pytest.mark.django_db(transaction=True)
def test_broker_down_at_enqueue_503_json_batch_and_upload_kept_then_swept(
    text_project, client_for, broker, media_root
):
    """The finding: with Redis down the request answered 500 after committing the batch
    and deleting its upload, an orphan that could never run."""
    broker.down = True
    url = f"/api/v1/projects/{text_project.pk}/imports/"

    response = client_for(text_project.owner).post(
        url, {"file": SimpleUploadedFile("x.csv", CSV)}, format="multipart"
    )

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "queue_unavailable"
    assert response["Retry-After"].isdigit()
    batch = ImportBatch.objects.get(pk=body["extra"]["job"])
    assert batch.status == "pending" and batch.upload and batch.dispatched_at is None
    assert "Connection refused" in batch.dispatch_error
    assert len(_stored(media_root)) == 1

    # The broker is back; the sweeper sends what was never sent (after its grace).
    broker.down = False
    ImportBatch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    report = jobs_sweep()

    assert report.resent == 1 and broker.sent == [batch.pk]
    batch.refresh_from_db()
    assert batch.dispatched_at is not None and batch.dispatch_error == ""
    assert batch.dispatches == 1


def test_sweeper_leaves_recently_sent_and_resends_long_unclaimed_with_backoff(text_project, broker):
    batch = _staged(text_project)
    now = timezone.now()
    ImportBatch.objects.filter(pk=batch.pk).update(dispatched_at=now, dispatches=1)
    assert jobs_sweep().resent == 0

    # Sent 20 minutes ago and still not picked up (lost with the broker's memory).
    ImportBatch.objects.filter(pk=batch.pk).update(dispatched_at=now - timedelta(minutes=20))
    assert jobs_sweep().resent == 1 and broker.sent == [batch.pk]
    # Sent twice now: the next resend waits twice as long.
    ImportBatch.objects.filter(pk=batch.pk).update(dispatched_at=now - timedelta(minutes=15))
    assert jobs_sweep().resent == 0


def test_sweeper_requeues_expired_lease_then_fails_after_max_attempts(
    text_project, broker, media_root
):
    batch = _staged(text_project)
    expired = timezone.now() - timedelta(minutes=5)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", lease_owner="dead", lease_expires_at=expired, attempts=1
    )

    report = jobs_sweep()

    assert report.requeued == 1 and broker.sent == [batch.pk]
    batch.refresh_from_db()
    assert batch.status == "pending" and batch.lease_owner == ""
    assert "stopped responding" in batch.error and "attempt 2 of at most 3" in batch.error

    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", lease_owner="dead-again", lease_expires_at=expired, attempts=3
    )
    report = jobs_sweep()

    assert report.failed == 1
    batch.refresh_from_db()
    assert batch.status == "failed" and "Stopped after 3 attempts" in batch.error
    assert batch.finished_at is not None
    assert batch.errors[0]["code"] == "import_error" and not batch.upload
    assert _stored(media_root) == []


def test_sweeper_leaves_live_leases_alone(text_project, broker):
    batch = _staged(text_project)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status="running", lease_owner="alive", lease_expires_at=timezone.now() + timedelta(1)
    )

    report = jobs_sweep()

    assert (report.requeued, report.failed, report.resent) == (0, 0, 0)
    assert ImportBatch.objects.get(pk=batch.pk).status == "running"


def test_sweeper_deletes_old_orphaned_staged_uploads_only(text_project, media_root, broker):
    live = _staged(text_project)
    staging = media_root / "imports"
    orphan = staging / "orphan.csv"
    orphan.write_bytes(b"left behind")
    fresh = staging / "fresh.csv"
    fresh.write_bytes(b"being uploaded")
    old = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(orphan, (old, old))
    os.utime(media_root / live.upload.name, (old, old))

    report = jobs_sweep()

    assert report.housekeeping == 1
    assert not orphan.exists() and fresh.exists() and (media_root / live.upload.name).exists()
