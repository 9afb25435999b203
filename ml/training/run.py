"""A training run on a worker (``ml.tasks.training_run_task``, queue ``gpu``).

1. The version's bundle files the run needs are copied from storage into a temporary
   directory and checked against the version's manifest (sha256): a run never trains on
   files that are not the version's.
2. ``ml.engine.training.pipeline.run_baseline`` encodes (through the embedding cache),
   trains with early stopping, evaluates on the test split and writes every artefact.
   Progress (phase, epoch, batch) goes to the run row about once a second; a cancel
   request and a lost lease are noticed within a few seconds and stop the training.
3. The artefacts are uploaded under a prefix of this attempt's own
   (``models/<project>/<run>-<lease owner>``), then published with the outcome in one
   transaction, under the lease. A worker killed anywhere before that commit publishes
   nothing: the redelivered task trains again from the start under a new prefix, and
   ``training_files_sweep`` deletes the abandoned one.
"""

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from annotation.schemas import LabelSchema
from core.errors import ApplicationError
from ml.models import TrainingRun
from ml.storage import orphans_sweep, prefix_delete, prefix_download, prefix_upload
from ml.training.params import RunParams
from ml.training.registry import backbone_path, encoder_spec
from provenance.services import audit_record

if TYPE_CHECKING:
    from core.jobs import JobRun
    from ml.engine.training.loop import Progress

logger = logging.getLogger(__name__)

STORAGE_ROOT = "models"
MANIFEST_FORMAT = "chorus-model/1"
# The run row is written at most this often while training; cancel requests are read as often.
PROGRESS_INTERVAL_S = 1.0
CANCEL_CHECK_INTERVAL_S = 2.0
# The bundle files a run reads (image projects add their images).
BUNDLE_FILES = (
    "data/train.parquet",
    "data/validation.parquet",
    "data/test.parquet",
    "annotations.parquet",
    "annotators.parquet",
)


class _Reporter:
    """Progress to the row (throttled) and the question "should the training stop?"."""

    def __init__(self, run: "JobRun[TrainingRun]") -> None:
        self.run = run
        self.run_id = run.job.pk
        self.phase = ""
        self.last_write = 0.0
        self.last_check = time.monotonic()
        self.cancelled = False

    def progress(self, phase: str, step: "Progress | None") -> None:
        now = time.monotonic()
        if phase == self.phase and now - self.last_write < PROGRESS_INTERVAL_S:
            return
        fields: dict[str, Any] = {"phase": phase}
        if step is not None:
            fields |= {
                "epoch": step.epoch,
                "epochs": step.epochs,
                "batch": step.batch,
                "batches": step.batches,
            }
        TrainingRun.objects.filter(pk=self.run_id).update(**fields)
        self.phase, self.last_write = phase, now

    def should_stop(self) -> bool:
        """True once the run was cancelled or this worker lost its lease (checked every
        couple of seconds, not every batch)."""
        if self.run.lost.is_set():
            return True
        now = time.monotonic()
        if now - self.last_check >= CANCEL_CHECK_INTERVAL_S:
            self.last_check = now
            self.cancelled = (
                TrainingRun.objects.filter(pk=self.run_id)
                .exclude(cancel_requested_at=None)
                .exists()
            )
        return self.cancelled


def stored_params(run: TrainingRun) -> RunParams:
    """The run's request as ``RunParams`` again, from its row."""
    hyper = dict(run.params)
    min_group_size = int(hyper.pop("min_group_size", 30))
    return RunParams(
        target=run.target,
        seed=run.seed,
        device=run.device_requested,
        encoder=run.encoder,
        group_by=tuple(run.group_by),
        annotator_questions=tuple(run.annotator_questions),
        min_group_size=min_group_size,
        hyper=hyper,
    )


def _fetch_bundle(run: TrainingRun, root: Path) -> str:
    """Copy the files the run needs and check each against the version's manifest;
    returns the sha256 of the version's ``manifest.json`` (the version's content address,
    for the model's lineage)."""
    from ml.engine.files import sha256_file

    version = run.dataset_version
    entries = {entry["path"]: entry for entry in version.manifest.get("files", [])}
    wanted = [name for name in BUNDLE_FILES if name in entries]
    if run.modality == "image":
        wanted += sorted(name for name in entries if name.startswith("images/"))
    prefix_download(version.storage_prefix, root, only=["manifest.json", *wanted])
    for name in wanted:
        if sha256_file(root / name) != entries[name]["sha256"]:
            raise RuntimeError(
                f"{name} of {version.label} does not match its manifest: the stored bundle "
                "was changed or damaged."
            )
    return sha256_file(root / "manifest.json")


def _refusal(run: TrainingRun) -> str:
    """Why this run cannot train at all ("" when it can)."""
    version = run.dataset_version
    if run.cancel_requested_at is not None:
        return "Cancelled before it started."
    if version.is_revoked:
        return f"{version.label} was revoked before the run started ({version.revoked_reason})."
    if not version.is_downloadable:
        return f"{version.label} is not built."
    if not LabelSchema.from_json(run.project.label_schema).is_single_choice:
        return "Only single-choice (nominal or ordinal) projects have classes to train on."
    return ""


def _write_manifest(
    run: TrainingRun, out: Path, *, weights_sha256: str, version_manifest_sha256: str
) -> list[dict[str, Any]]:
    from ml.engine.files import file_entry

    files: list[dict[str, Any]] = [
        dict(file_entry(path, out)) for path in sorted(p for p in out.rglob("*") if p.is_file())
    ]
    manifest = {
        "format": MANIFEST_FORMAT,
        "run": run.pk,
        "project": run.project_id,
        "dataset_version": {
            "id": run.dataset_version_id,
            "label": run.dataset_version.label,
            "manifest_sha256": version_manifest_sha256,
        },
        "weights_sha256": weights_sha256,
        "files": files,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return files


def training_run_execute(run: "JobRun[TrainingRun]") -> None:
    """Train, evaluate and publish one run (see the module docstring)."""
    from ml.engine.encoders import EmbeddingCache
    from ml.engine.training.loop import Cancelled
    from ml.engine.training.pipeline import RunSpec, run_baseline

    job = TrainingRun.objects.select_related("dataset_version", "project", "created_by").get(
        pk=run.job.pk
    )
    refusal = _refusal(job)
    if refusal:
        with transaction.atomic():
            run.fail(refusal)
        return
    params = stored_params(job)
    schema = LabelSchema.from_json(job.project.label_schema)
    reporter = _Reporter(run)
    reporter.progress("fetch", None)
    prefix = f"{STORAGE_ROOT}/{job.project_id}/{job.pk}-{run.owner[:12]}"
    with tempfile.TemporaryDirectory(prefix="chorus-training-") as tmp:
        bundle, out = Path(tmp) / "bundle", Path(tmp) / "out"
        version_manifest_sha256 = _fetch_bundle(job, bundle)
        try:
            backbone = None
            if job.modality == "image" and job.encoder:
                backbone = backbone_path(job.encoder)
            spec = RunSpec(
                bundle_root=bundle,
                modality="image" if job.modality == "image" else "text",
                classes=tuple(schema.values),
                target=params.target,
                config=params.config(backbone_path=backbone),
                encoder=encoder_spec(params.encoder) if job.modality == "text" else None,
                group_by=params.group_by,
                annotator_questions=params.annotator_questions,
                min_group_size=params.min_group_size,
            )
            outcome = run_baseline(
                spec,
                out,
                cache=EmbeddingCache(Path(settings.CHORUS_EMBEDDING_CACHE_DIR)),
                progress=reporter.progress,
                should_stop=reporter.should_stop,
            )
        except Cancelled:
            run.check()  # a lost lease is not a cancellation: the new owner carries on
            with transaction.atomic():
                run.fail("Cancelled while training.", phase="")
            return
        except (ValueError, ApplicationError) as error:
            # The data or the request cannot be trained on (an empty split, a model this
            # worker does not have, a device it lacks): say so.
            message = error.message if isinstance(error, ApplicationError) else str(error)
            with transaction.atomic():
                run.fail(f"Training could not run: {message}", phase="")
            return
        reporter.progress("upload", None)
        files = _write_manifest(
            job,
            out,
            weights_sha256=outcome.weights_sha256,
            version_manifest_sha256=version_manifest_sha256,
        )
        run.check()
        prefix_delete(prefix)  # a retry of this very attempt starts clean
        prefix_upload(out, prefix)
    metrics = outcome.metrics
    try:
        with transaction.atomic():
            run.complete(
                phase="",
                device=str(metrics.get("environment", {}).get("device", "")),
                metrics=metrics,
                storage_prefix=prefix,
                manifest={"format": MANIFEST_FORMAT, "files": files},
                weights_sha256=outcome.weights_sha256,
                wall_seconds=metrics.get("wall_s"),
                samples_per_second=metrics.get("samples_per_s"),
            )
            audit_record(
                actor=job.created_by,
                action="training.finish",
                obj=job,
                payload={
                    "project": job.project_id,
                    "dataset_version": job.dataset_version_id,
                    "target": job.target,
                    "weights_sha256": outcome.weights_sha256,
                    "test_accuracy": metrics.get("test", {}).get("accuracy"),
                },
            )
    except BaseException:
        prefix_delete(prefix)  # not published: these files belong to no run
        raise


def training_files_sweep() -> int:
    """Delete training attempts' files no finished run names, once an hour old. Run by
    every job sweep."""
    keep = set(
        TrainingRun.objects.exclude(storage_prefix="").values_list("storage_prefix", flat=True)
    ) | {
        f"{STORAGE_ROOT}/{project}/{pk}-{owner[:12]}"
        for project, pk, owner in TrainingRun.objects.filter(
            status=TrainingRun.Status.RUNNING
        ).values_list("project_id", "pk", "lease_owner")
    }
    return orphans_sweep(STORAGE_ROOT, keep=keep)
