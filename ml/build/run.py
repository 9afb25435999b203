"""The build of a dataset version; see ``ml.build``."""

import json
import logging
import tempfile
import time
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from annotation.models import Annotation, Item, Modality, Project
from annotation.schemas import LabelSchema
from core.db import advisory_xact_lock
from core.jobs import JobRun
from ml.build.aggregate import targets_compute
from ml.build.bundle import BUNDLE_FORMAT, bundle_write, pseudonym_key_for
from ml.build.collect import Collected, collect, data_size, group_values
from ml.build.contamination import ContaminationResult, contamination_check
from ml.build.locks import NUMBER_LOCK
from ml.engine.splits import SplitSpec, assign_splits
from ml.membership import Membership, compare
from ml.models import DatasetVersion
from ml.recipes import SPLITS, Recipe, recipe_from_json
from ml.storage import orphans_sweep, prefix_delete, prefix_upload
from provenance.services import audit_record

logger = logging.getLogger(__name__)

STORAGE_ROOT = "datasets"
# The progress bar is written at most this often.
PROGRESS_INTERVAL_S = 1.0


def code_version() -> str:
    try:
        return f"chorus {metadata.version('chorus')}"
    except metadata.PackageNotFoundError:
        return "chorus (unpackaged)"


class _Progress:
    """Rows read so far, written to the version row now and then (not per row)."""

    def __init__(self, version_id: int) -> None:
        self.version_id = version_id
        self.pending = 0
        self.last = time.monotonic()

    def __call__(self, rows: int) -> None:
        self.pending += rows
        if time.monotonic() - self.last >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            DatasetVersion.objects.filter(pk=self.version_id).update(
                progress_done=F("progress_done") + self.pending
            )
            self.pending = 0
        self.last = time.monotonic()


def _split_frame(collected: Collected, label: pd.Series | None, recipe: Recipe) -> pd.DataFrame:
    items = collected.items
    frame = pd.DataFrame({"item_id": items["item_id"].astype("int64")})
    frame["label"] = (
        frame["item_id"].map(label).astype(object).where(lambda s: s.notna(), None)
        if label is not None
        else None
    )
    key = recipe.split.group_key
    if key is not None:
        frame[key] = group_values(items, key).to_numpy()
    return frame


def _spec(recipe: Recipe) -> SplitSpec:
    return SplitSpec(
        ratios=recipe.split.ratios,
        seed=recipe.split.seed,
        strategy=recipe.split.strategy,
        group_key=recipe.split.group_key,
    )


def _counts(
    collected: Collected, splits: pd.Series, label: pd.Series | None, categories: tuple[str, ...]
) -> dict[str, Any]:
    per_item = collected.items.set_index("item_id")["n_labels"]
    items = {split: int((splits == split).sum()) for split in SPLITS}
    labels = {split: int(per_item[splits.index[splits == split]].sum()) for split in SPLITS}
    distribution: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        members = splits.index[splits == split]
        values = label.reindex(members).dropna() if label is not None else pd.Series(dtype=object)
        distribution[split] = {category: int((values == category).sum()) for category in categories}
    return {
        "items": items,
        "labels": labels,
        "annotators": len(collected.annotators),
        "left_out": collected.left_out_counts(),
        "label_distribution": distribution,
    }


def _manifest(
    version: DatasetVersion,
    recipe: Recipe,
    *,
    collected: Collected,
    counts: dict[str, Any],
    contamination: ContaminationResult,
    categories: tuple[str, ...],
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    project = version.project
    return {
        "format": BUNDLE_FORMAT,
        "project": {"id": project.pk, "title": project.title, "modality": project.modality},
        "build": version.pk,
        "recipe": recipe.to_json(),
        "code_version": code_version(),
        "built_at": timezone.now().isoformat(timespec="seconds"),
        "categories": list(categories),
        "pseudonyms": "stable per project" if recipe.stable_pseudonyms else "this version only",
        "counts": counts,
        # Ids only: items by their Chorus id, labels counted. Annotators never appear.
        "left_out": {
            reason: {"items": ids, "labels": collected.left_out_labels.get(reason, 0)}
            for reason, ids in collected.left_out_items.items()
        }
        | {"withdrawn": {"items": [], "labels": collected.left_out_labels.get("withdrawn", 0)}},
        "contamination": contamination.summary(),
        "files": files,
    }


def _number(project: Project, membership: Membership) -> tuple[int, int]:
    """The next number: a minor step when the project's latest built version's items are
    all here in the same splits (data was only added), a major one otherwise."""
    latest = (
        DatasetVersion.objects.filter(project=project, status=DatasetVersion.Status.DONE)
        .exclude(major=None)
        .order_by("-major", "-minor")
        .first()
    )
    if latest is None or latest.major is None or latest.minor is None:
        return 1, 0
    if compare(Membership.from_bytes(bytes(latest.membership)), membership).only_adds:
        return latest.major, latest.minor + 1
    return latest.major + 1, 0


class _Clock:
    """Seconds per build phase, for the manifest (and the benchmark)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - self.last, 3)
        self.last = now


# Reads of the data before a build that keeps finding people's rights exercised during it
# gives up (with a message), and the margin by which "during" is widened: withdrawals are
# stamped by the web server's clock.
MAX_READS = 3
CHANGE_MARGIN_S = 60


class DataChanged(Exception):
    """Labels the build read were withdrawn, or items it read taken down, before it could
    publish: the version must not ship them, so the data is read again."""


def _database_now() -> datetime:
    now: datetime = DatasetVersion.objects.annotate(now=Now()).values_list("now", flat=True)[0]
    return now


def _changed_since(
    project: Project, since: datetime, membership: Membership, shipped: pd.DataFrame
) -> str:
    """What happened since the read to data this version holds ("" if nothing): an item it
    holds taken down, or a label it ships withdrawn. Called under ``NUMBER_LOCK``, which
    the revocation receivers take too: a withdrawal or takedown either committed before
    this check (seen here) or runs after publication (and revokes the published version)."""
    margin = since - timedelta(seconds=CHANGE_MARGIN_S)
    taken_down = Item.objects.filter(project=project, tombstoned_at__gte=margin).values_list(
        "pk", flat=True
    )
    if any(membership.holds(pk) for pk in taken_down):
        return "an item it holds was taken down"
    withdrawn = set(
        Annotation.objects.filter(
            project=project, withdrawn=True, withdrawn_at__gte=margin
        ).values_list("item_id", "annotator_id")
    )
    if withdrawn:
        items = {item for item, _annotator in withdrawn}
        candidates = shipped[shipped["item_id"].isin(items)]
        pairs = zip(candidates["item_id"], candidates["annotator_id"], strict=True)
        if any((int(item), int(annotator)) in withdrawn for item, annotator in pairs):
            return "an annotator whose labels it holds withdrew"
    return ""


def dataset_version_execute(run: JobRun[DatasetVersion]) -> None:
    """Build the version; if people's rights were exercised on the data while it was being
    built, read it again (at most ``MAX_READS`` times), then fail with a message."""
    for attempt in range(1, MAX_READS + 1):
        try:
            _build_once(run)
            return
        except DataChanged as change:
            logger.info("dataset version %s: %s; reading again", run.job.pk, change)
            if attempt == MAX_READS:
                with transaction.atomic():
                    run.fail(
                        f"The data changed while it was being built ({change}), {MAX_READS} "
                        "times in a row. Build it again once the withdrawals and takedowns "
                        "in progress are done."
                    )


def _build_once(run: JobRun[DatasetVersion]) -> None:
    clock = _Clock()
    version = DatasetVersion.objects.select_related("project", "created_by").get(pk=run.job.pk)
    project = version.project
    recipe = recipe_from_json(version.recipe)
    schema = LabelSchema.from_json(project.label_schema)
    image_project = project.modality == Modality.IMAGE
    DatasetVersion.objects.filter(pk=version.pk).update(
        progress_total=data_size(project), progress_done=0
    )
    progress = _Progress(version.pk)
    read_since = _database_now()
    collected = collect(project, recipe, progress)
    progress.flush()
    clock.lap("read")
    run.check()
    targets = targets_compute(collected.annotations, schema, recipe.targets, seed=recipe.split.seed)
    label = targets.hard_label()
    clock.lap("aggregate")
    contamination = contamination_check(collected.items, recipe, image_project=image_project)
    clock.lap("near_duplicates")
    splits = assign_splits(
        _split_frame(collected, label, recipe), _spec(recipe), clusters=contamination.clusters
    )
    clock.lap("split")
    contamination = contamination.with_splits(splits)
    if contamination.crossing:
        raise RuntimeError(f"near-duplicate clusters cross splits: {contamination.crossing[:5]}")
    run.check()
    key = pseudonym_key_for(
        version_key=version.pseudonym_key, project_id=project.pk, stable=recipe.stable_pseudonyms
    )
    counts = _counts(collected, splits, label, targets.categories)
    prefix = f"{STORAGE_ROOT}/{project.pk}/{version.pk}-{run.owner[:12]}"
    with tempfile.TemporaryDirectory(prefix="chorus-dataset-") as tmp:
        root = Path(tmp)
        files = bundle_write(
            root,
            collected=collected,
            splits=splits,
            targets=targets,
            recipe=recipe,
            key=key,
            survey=project.survey,
            image_project=image_project,
        )
        clock.lap("write")
        manifest = _manifest(
            version,
            recipe,
            collected=collected,
            counts=counts,
            contamination=contamination,
            categories=targets.categories,
            files=files,
        )
        (root / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        run.check()
        prefix_delete(prefix)  # a retry of this very attempt starts clean
        prefix_upload(root, prefix)
        clock.lap("upload")
    membership = Membership.from_mapping({int(k): str(v) for k, v in splits.items()})
    try:
        with transaction.atomic():
            advisory_xact_lock(NUMBER_LOCK, project.pk)
            change = _changed_since(project, read_since, membership, collected.annotations)
            if change:
                raise DataChanged(change)
            major, minor = _number(project, membership)
            clock.lap("publish")
            run.complete(
                major=major,
                minor=minor,
                storage_prefix=prefix,
                manifest=manifest,
                counts=counts | {"build_seconds": clock.phases},
                contamination=contamination.summary(),
                membership=membership.to_bytes(),
                progress_done=F("progress_total"),
                built_at=Now(),
            )
            audit_record(
                actor=version.created_by,
                action="dataset.build",
                obj=version,
                payload={
                    "project": project.pk,
                    "version": f"v{major}.{minor}",
                    "items": counts["items"],
                    "left_out": {r: c["items"] for r, c in counts["left_out"].items()},
                    "manifest_files": len(files),
                },
            )
    except BaseException:
        # Not published: its files belong to no version.
        prefix_delete(prefix)
        raise


def dataset_files_sweep() -> int:
    """Delete build attempts' files no built version refers to, once an hour old (a
    worker died between upload and publication). Run by every job sweep."""
    keep = set(
        DatasetVersion.objects.exclude(storage_prefix="").values_list("storage_prefix", flat=True)
    ) | {
        f"{STORAGE_ROOT}/{project}/{pk}-{owner[:12]}"
        for project, pk, owner in DatasetVersion.objects.filter(
            status=DatasetVersion.Status.RUNNING
        ).values_list("project_id", "pk", "lease_owner")
    }
    return orphans_sweep(STORAGE_ROOT, keep=keep)
