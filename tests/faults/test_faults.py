"""The fault suite: Chorus under load while its dependencies restart and its workers die.

Each test asserts what an operator relies on: no acknowledged submission is lost or
duplicated, no item gets more than k labels, and every job ends ``done`` or ``failed``
with a message within a bounded time. The figures each test measures (recovery times,
errors clients saw) are appended to artifacts/faults/figures.txt.

Run with ``make test-faults``; the tests are skipped anywhere else.
"""

import io
import json
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connections
from django.db.models import Count
from PIL import Image
from rest_framework.authtoken.models import Token

from annotation.models import Annotation, ImportBatch, Item, Project
from tests.annotation.factories import make_enrolled_annotator, make_open_project, make_project
from tests.faults import stack
from tests.faults.conftest import ARTIFACTS, media_is_mount, media_remount
from tests.faults.load import AnnotatorLoad, LoadReport

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 16
K = 3
# Every job must end within this long after its fault is over.
JOB_BOUND_S = 90.0
# A request that queues a job while the broker is down or hung answers within this long.
ENQUEUE_BOUND_S = 3.0


def _figures(test: str, **figures: Any) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "figures.txt").open("a") as out:
        out.write(json.dumps({"test": test, **figures}, sort_keys=True) + "\n")


def _token(user: Any) -> str:
    return Token.objects.create(user=user).key


def _annotators(project: Project, n: int = ANNOTATORS) -> list[tuple[int, str]]:
    users = [make_enrolled_annotator(project) for _ in range(n)]
    return [(user.pk, _token(user)) for user in users]


def _csv(rows: int, tag: str | None = None) -> bytes:
    tag = tag or uuid.uuid4().hex[:8]
    lines = ["external_id,text,license"]
    lines += [f"{tag}-{i},fault text {tag} number {i},CC0-1.0" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _post_import(web: str, project: Project, token: str, data: bytes) -> requests.Response:
    return requests.post(
        f"{web}/api/v1/projects/{project.pk}/imports/",
        headers={"Authorization": f"Token {token}"},
        files={"file": ("items.csv", data, "text/csv")},
        timeout=30,
    )


def _batch(pk: int) -> ImportBatch:
    return ImportBatch.objects.get(pk=pk)


def _finished(pk: int) -> Callable[[], bool]:
    return lambda: _batch(pk).status in ("done", "failed")


def _check_labels(project: Project, report: LoadReport) -> dict[str, int]:
    """Nothing acknowledged lost or duplicated; no item over k."""
    stored = set(
        Annotation.objects.filter(item__project=project).values_list("item_id", "annotator_id")
    )
    acknowledged = report.acknowledged
    assert len(acknowledged) == len(set(acknowledged)), "a submission was acknowledged twice"
    lost = set(acknowledged) - stored
    assert not lost, f"{len(lost)} acknowledged submissions are not stored"
    over = Item.objects.filter(project=project).annotate(n=Count("annotations")).filter(n__gt=K)
    assert not over.exists(), "an item has more than k labels"
    assert not Item.objects.filter(project=project, slots_taken__gt=K).exists()
    return {"acknowledged": len(acknowledged), "stored": len(stored)}


@pytest.fixture
def campaign() -> tuple[Project, list[tuple[int, str]]]:
    project = make_open_project(600, k=K)
    return project, _annotators(project)


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_restart_under_load_nothing_lost_worker_reconnects(
    web, beat, start_worker, services, campaign
):
    project, annotators = campaign
    token = _token(project.owner)
    worker = start_worker()
    # The worker holds a database connection from a first job when the server restarts.
    first = _post_import(web, project, token, _csv(5)).json()["id"]
    stack.wait_until(_finished(first), timeout_s=JOB_BOUND_S, what="first import")

    with AnnotatorLoad(web, project.pk, annotators) as load:
        time.sleep(2)
        restarted_at = time.monotonic()
        away_s = services.pg_restart()
        back_at = time.monotonic()
        # This process's own connection died with the server too.
        connections.close_all()
        time.sleep(4)
    report = load.report

    first_ack = report.first_ack_after(back_at)
    assert first_ack is not None, "no submission succeeded after the restart"
    # Jobs queued after the restart run on the worker's reconnected database connection.
    batches = [_post_import(web, project, token, _csv(5)).json()["id"] for _ in range(5)]
    took = max(
        stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="imports after restart")
        for pk in batches
    )
    assert [_batch(pk).status for pk in batches] == ["done"] * 5, worker.log_tail()
    assert report.non_json_errors == 0, "clients got an HTML error page"
    counts = _check_labels(project, report)
    _figures(
        "postgres_restart",
        server_away_s=round(away_s, 2),
        first_submit_after_restart_s=round(first_ack - back_at, 2),
        client_errors=dict(report.errors),
        restart_to_first_ack_s=round(first_ack - restarted_at, 2),
        jobs_after_restart_done_in_s=round(took, 2),
        **counts,
    )


# ---------------------------------------------------------------- workers killed


def _import_running(web: str, project: Project, token: str, rows: int) -> int:
    response = _post_import(web, project, token, _csv(rows))
    assert response.status_code == 202, response.text
    pk = response.json()["id"]
    stack.wait_until(
        lambda: _batch(pk).status == "running", timeout_s=JOB_BOUND_S, what="import running"
    )
    time.sleep(0.5)  # into the work, inside its transaction
    return pk


def test_pool_child_killed_mid_import_redelivered_and_finished(web, beat, start_worker):
    project = make_project()
    token = _token(project.owner)
    worker = start_worker()
    child = stack.worker_pool_child(worker)
    pk = _import_running(web, project, token, rows=20_000)

    stack.os.kill(child, stack.signal.SIGKILL)
    killed_at = time.monotonic()
    took = stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="import after kill")

    batch = _batch(pk)
    assert batch.status == "done", (batch.error, worker.log_tail())
    assert batch.item_count == 20_000 == Item.objects.filter(project=project).count()
    assert batch.attempts >= 2 and not batch.upload and batch.error == ""
    _figures(
        "pool_child_sigkill",
        finished_after_kill_s=round(time.monotonic() - killed_at, 2),
        attempts=batch.attempts,
        wait_s=round(took, 2),
    )


def test_whole_worker_killed_mid_import_swept_and_finished_by_another(
    web, beat, start_worker, campaign
):
    labeled, annotators = campaign
    project = make_project()
    token = _token(project.owner)
    first = start_worker("doomed")
    with AnnotatorLoad(web, labeled.pk, annotators) as load:
        pk = _import_running(web, project, token, rows=20_000)
        first.kill_all()
        start_worker("survivor")
        took = stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="import after kill")

    batch = _batch(pk)
    assert batch.status == "done", batch.error
    assert batch.item_count == 20_000 == Item.objects.filter(project=project).count()
    assert batch.attempts == 2 and not batch.upload
    counts = _check_labels(labeled, load.report)
    _figures(
        "whole_worker_sigkill",
        finished_after_kill_s=round(took, 2),
        attempts=batch.attempts,
        client_errors=dict(load.report.errors),
        **counts,
    )


# ---------------------------------------------------------------- Redis


def test_redis_killed_with_queued_jobs_messages_survive(
    web, beat, start_worker, services, campaign
):
    labeled, annotators = campaign
    project = make_project()
    token = _token(project.owner)
    batches = []
    for _ in range(5):
        response = _post_import(web, project, token, _csv(10))
        assert response.status_code == 202, response.text
        batches.append(response.json()["id"])
    assert services.redis_queue_length() >= 5

    # Labeling does not need Redis: it goes on while Redis dies and comes back.
    with AnnotatorLoad(web, labeled.pk, annotators) as load:
        time.sleep(1)
        services.redis_kill()
        services.redis_start()
        time.sleep(1)
    counts = _check_labels(labeled, load.report)
    assert not load.report.errors, load.report.errors
    assert services.redis_queue_length() >= 5, "queued messages were lost with Redis"
    start_worker()
    took = max(
        stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="queued imports")
        for pk in batches
    )

    done = [_batch(pk) for pk in batches]
    assert [b.status for b in done] == ["done"] * 5
    # Survived in Redis's AOF: not one had to be sent again by the sweeper.
    assert [b.dispatches for b in done] == [1] * 5
    _figures("redis_kill9_queued", queued=5, all_done_after_restart_s=round(took, 2), **counts)


def test_broker_down_then_hung_at_enqueue_503_quickly_upload_kept_job_runs_later(
    web, beat, start_worker, services, media_dir
):
    project = make_project()
    token = _token(project.owner)
    start_worker()
    figures: dict[str, Any] = {}

    for fault in ("down", "hung"):
        if fault == "down":
            services.redis_kill()
        else:
            paused = services.redis_pid()
            services.redis_pause()
        started = time.monotonic()
        response = _post_import(web, project, token, _csv(10))
        answered_s = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["code"] == "queue_unavailable" and "Retry-After" in response.headers
        assert answered_s < ENQUEUE_BOUND_S, f"broker {fault}: answered in {answered_s:.1f} s"
        batch = _batch(body["extra"]["job"])
        assert batch.status == "pending" and batch.dispatch_error
        assert (media_dir / batch.upload.name).exists(), "the upload was not kept"

        if fault == "down":
            services.redis_start()
        else:
            services.redis_resume(paused)
        took = stack.wait_until(_finished(batch.pk), timeout_s=JOB_BOUND_S, what="swept import")
        assert _batch(batch.pk).status == "done"
        figures[fault] = {
            "answered_s": round(answered_s, 2),
            "ran_after_recovery_s": round(took, 2),
        }
    _figures("broker_at_enqueue", **figures)


# ---------------------------------------------------------------- imports and labeling


def test_large_import_into_open_project_does_not_stall_labeling(web, beat, start_worker, campaign):
    project, annotators = campaign
    token = _token(project.owner)
    start_worker()

    with AnnotatorLoad(web, project.pk, annotators) as load:
        time.sleep(1.5)
        response = _post_import(web, project, token, _csv(20_000))
        assert response.status_code == 202, response.text
        pk = response.json()["id"]
        stack.wait_until(lambda: _batch(pk).status == "running", timeout_s=30, what="running")
        running_at = time.monotonic()
        stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="large import")
        finished_at = time.monotonic()
        time.sleep(0.5)
    report = load.report

    assert _batch(pk).status == "done", _batch(pk).error
    gap = report.longest_gap(running_at, finished_at)
    counts = _check_labels(project, report)
    # Was ~9 s with no completions: the import held the project row.
    assert gap < 2.0, f"labeling stalled for {gap:.1f} s during the import"
    _figures(
        "large_import_under_load",
        import_s=round(finished_at - running_at, 2),
        longest_gap_without_submit_s=round(gap, 2),
        client_errors=dict(report.errors),
        **counts,
    )


# ---------------------------------------------------------------- media storage


def _zip_of_images(n: int, size: tuple[int, int]) -> bytes:
    from tests.annotation.conftest import zip_bytes

    rng = random.Random(n)  # noqa: S311 - test pixels
    images = {}
    lines = ["external_id,file,license"]
    for i in range(n):
        # Noise does not compress: the stored PNGs are about as large as the pixels.
        pixels = bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
        out = io.BytesIO()
        Image.frombytes("RGB", size, pixels).save(out, "PNG")
        images[f"img{i}.png"] = out.getvalue()
        lines.append(f"p{i},img{i}.png,CC0-1.0")
    images["manifest.csv"] = ("\n".join(lines) + "\n").encode()
    return zip_bytes(images)


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_read_only_and_full_media_clear_errors_nothing_partial_left(
    web, beat, start_worker, media_dir, fault_env, tmp_path
):
    if not media_is_mount(media_dir):
        pytest.skip("needs a tmpfs media folder (mount as root) to make it read-only or full")
    project = make_project(preset="privacy_alert", risk_disclosure="Photos of rooms.")
    token = _token(project.owner)
    archive = _zip_of_images(6, (200, 200))
    archive_path = tmp_path / "photos.zip"
    archive_path.write_bytes(archive)
    before = _files(media_dir)
    figures: dict[str, Any] = {}

    # Read-only: the API refuses the upload with a stable code; the command says one line.
    media_remount(media_dir, "ro")
    try:
        response = _post_import(web, project, token, archive)
        command = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "import_items",
                "--project",
                str(project.pk),
                "--file",
                str(archive_path),
            ],
            cwd=stack.REPO_ROOT,
            env=fault_env,
            capture_output=True,
            check=False,
            timeout=120,
        )
    finally:
        media_remount(media_dir, "rw")
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "storage_read_only"
    stderr = command.stderr.decode().strip()
    assert command.returncode != 0 and "Traceback" not in stderr, stderr
    # The error in one line (after the storage's own log record, which names the path).
    last = stderr.splitlines()[-1]
    assert last.startswith("CommandError: Import failed [storage_read_only]"), stderr
    assert len(stderr.splitlines()) <= 2, stderr
    assert _files(media_dir) == before
    figures["read_only"] = {"api": response.json()["code"], "command": last}

    # Full while the worker stores the images: the batch fails with storage_full and
    # nothing partial stays behind (no truncated image at a content-addressed name). The
    # worker starts once the disk is nearly full, so the upload is staged first.
    response = _post_import(web, project, token, archive)
    assert response.status_code == 202, response.text
    pk = response.json()["id"]
    used = sum((media_dir / name).stat().st_size for name in _files(media_dir))
    media_remount(media_dir, f"size={used + 150 * 1024}")
    try:
        start_worker()
        took = stack.wait_until(_finished(pk), timeout_s=JOB_BOUND_S, what="import on full disk")
    finally:
        media_remount(media_dir, "size=256m")
    batch = _batch(pk)
    assert batch.status == "failed" and batch.errors[0]["code"] == "storage_full", batch.errors
    assert Item.objects.filter(project=project).count() == 0
    assert _files(media_dir) == before, "files were left behind"
    figures["full"] = {"batch": batch.errors[0]["code"], "failed_in_s": round(took, 2)}
    _figures("media_storage", **figures)


# ---------------------------------------------------------------- dataset builds


def _large_labelled_project(n_items: int) -> Project:
    """A text project with ``n_items`` distinct texts, each labeled by three annotators,
    written in bulk (the services' per-label path would take minutes)."""
    from annotation.models import Annotation as Label
    from annotation.models import Modality, ProjectStatus
    from annotation.services import project_transition

    project = make_project(k=K)
    rng = random.Random(11)  # noqa: S311 - test texts
    words = [f"w{n}" for n in range(5000)]
    items = Item.objects.bulk_create(
        [
            Item(
                project=project,
                external_id=f"b{i}",
                kind=Modality.TEXT,
                text=" ".join(rng.choice(words) for _ in range(10)),
                sha256=f"{i:064x}",
                license="CC-BY-4.0",
                slots_taken=K,
            )
            for i in range(n_items)
        ],
        batch_size=2000,
    )
    project_transition(project=project, actor=project.owner, status=ProjectStatus.OPEN)
    annotators = [make_enrolled_annotator(project) for _ in range(K)]
    values = ("hateful", "offensive", "neither")
    Label.objects.bulk_create(
        [
            Label(project=project, item=item, annotator=annotator, value=rng.choice(values))
            for item in items
            for annotator in annotators
        ],
        batch_size=5000,
    )
    return project


def _queue_build(web: str, project: Project, token: str, recipe: dict[str, Any]) -> int:
    response = requests.post(
        f"{web}/api/v1/projects/{project.pk}/datasets/",
        headers={"Authorization": f"Token {token}"},
        json={"recipe": recipe},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _version(pk: int) -> Any:
    from ml.models import DatasetVersion

    return DatasetVersion.objects.get(pk=pk)


def _data_files(version: Any) -> dict[str, str]:
    return {entry["path"]: entry["sha256"] for entry in version.manifest["files"]}


def test_worker_killed_mid_build_build_completes_once_same_files(web, beat, start_worker):
    from provenance.models import AuditEvent

    project = _large_labelled_project(8_000)
    token = _token(project.owner)
    recipe = {"stable_pseudonyms": True, "split": {"seed": 5}}
    worker = start_worker("builder")
    reference = _queue_build(web, project, token, recipe)
    stack.wait_until(
        lambda: _version(reference).status in ("done", "failed"),
        timeout_s=JOB_BOUND_S,
        what="uninterrupted build",
    )
    assert _version(reference).status == "done", _version(reference).error
    uninterrupted_s = (
        _version(reference).finished_at - _version(reference).started_at
    ).total_seconds()

    pk = _queue_build(web, project, token, recipe)
    stack.wait_until(
        lambda: _version(pk).status == "running" and _version(pk).progress_done > 0,
        timeout_s=JOB_BOUND_S,
        what="build running",
    )
    worker.kill_all()
    start_worker("rescuer")
    took = stack.wait_until(
        lambda: _version(pk).status in ("done", "failed"), timeout_s=JOB_BOUND_S, what="build"
    )

    version = _version(pk)
    assert version.status == "done", version.error
    assert version.attempts == 2
    assert _data_files(version) == _data_files(_version(reference))
    builds = AuditEvent.objects.filter(
        action="dataset.build", object_type="ml.datasetversion", object_id=str(pk)
    )
    assert builds.count() == 1, "published more than once"
    _figures(
        "build_worker_sigkill",
        items=8_000,
        uninterrupted_build_s=round(uninterrupted_s, 2),
        finished_after_kill_s=round(took, 2),
        attempts=version.attempts,
    )


def _queue_training(web: str, version_id: int, token: str, request: dict[str, Any]) -> int:
    response = requests.post(
        f"{web}/api/v1/datasets/{version_id}/training-runs/",
        headers={"Authorization": f"Token {token}"},
        json=request,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _run(pk: int) -> Any:
    from ml.models import TrainingRun

    return TrainingRun.objects.get(pk=pk)


def test_training_worker_killed_mid_training_run_restarts_cleanly_same_model(
    web, beat, start_worker
):
    """SIGKILL the worker while it trains: the redelivered task trains again from the start
    and publishes once, the same weights (same seed, same device) as an uninterrupted run,
    and no half-written model is left in storage."""
    from django.core.files.storage import default_storage

    from provenance.models import AuditEvent

    project = _large_labelled_project(600)
    token = _token(project.owner)
    worker = start_worker("trainer")
    version_id = _queue_build(web, project, token, {"split": {"seed": 2}})
    stack.wait_until(
        lambda: _version(version_id).status in ("done", "failed"),
        timeout_s=JOB_BOUND_S,
        what="build",
    )
    assert _version(version_id).status == "done", _version(version_id).error
    # Long enough to be killed in the middle: no early stop, small batches.
    request = {
        "seed": 4,
        "device": "cpu",
        "params": {"max_epochs": 60, "patience": 60, "batch_size": 4},
    }
    reference = _queue_training(web, version_id, token, request)
    stack.wait_until(
        lambda: _run(reference).status in ("done", "failed"),
        timeout_s=4 * JOB_BOUND_S,
        what="uninterrupted training",
    )
    assert _run(reference).status == "done", _run(reference).error

    pk = _queue_training(web, version_id, token, request)
    stack.wait_until(
        lambda: _run(pk).phase == "train" and _run(pk).epoch >= 3,
        timeout_s=4 * JOB_BOUND_S,
        what="training running",
    )
    worker.kill_all()
    start_worker("rescuer")
    took = stack.wait_until(
        lambda: _run(pk).status in ("done", "failed"), timeout_s=4 * JOB_BOUND_S, what="training"
    )

    run = _run(pk)
    assert run.status == "done", run.error
    assert run.attempts == 2
    assert run.weights_sha256 == _run(reference).weights_sha256
    assert run.metrics["test"] == _run(reference).metrics["test"]
    finishes = AuditEvent.objects.filter(
        action="training.finish", object_type="ml.trainingrun", object_id=str(pk)
    )
    assert finishes.count() == 1, "published more than once"
    attempts, _files = default_storage.listdir(f"models/{project.pk}")
    assert sorted(attempts) == sorted(
        p.rsplit("/", 1)[-1] for p in (run.storage_prefix, _run(reference).storage_prefix)
    ), "a killed attempt left files behind"
    _figures(
        "training_worker_sigkill",
        items=600,
        uninterrupted_training_s=round(_run(reference).wall_seconds or 0.0, 2),
        finished_after_kill_s=round(took, 2),
        attempts=run.attempts,
    )
