"""Dataset versions built in process: policies, determinism, splits, bundle, numbering."""

import csv
import io
import json
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from annotation.models import Annotation, ControlKind, Enrolment, Item, SubjectConsent
from annotation.services import enrolment_withdraw
from core.errors import ValidationFailed
from ml.models import DatasetVersion
from ml.recipes import recipe_from_json
from ml.services import dataset_version_dry_run
from tests.ml.conftest import SENTENCES, build_version

pytestmark = pytest.mark.django_db


def _read(version: DatasetVersion, name: str) -> bytes:
    with default_storage.open(f"{version.storage_prefix}/{name}", "rb") as handle:
        return handle.read()


def _frame(version: DatasetVersion, name: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(_read(version, name))).to_pandas()


def _data_files(version: DatasetVersion) -> dict[str, str]:
    return {entry["path"]: entry["sha256"] for entry in version.manifest["files"]}


def test_recipe_defaults_and_every_problem_reported() -> None:
    recipe = recipe_from_json({})
    assert recipe.split.ratios == (0.8, 0.1, 0.1) and recipe.formats == ("parquet",)
    with pytest.raises(ValidationFailed) as raised:
        recipe_from_json(
            {
                "min_labels": 0,
                "split": {"ratios": [0.5, 0.5, 0.5], "strategy": "grouped"},
                "formats": ["xls"],
                "colour": "blue",
            }
        )
    fields = raised.value.extra["fields"]
    assert {"min_labels", "split.ratios", "split.group_key", "formats", "colour"} <= set(fields)


def test_build_publishes_bundle_with_manifest_of_every_file(labelled) -> None:
    version = build_version(labelled, {"formats": ["jsonl", "csv"]})

    assert version.label == "v1.0" and version.built_at is not None
    paths = set(_data_files(version))
    assert {
        "data/train.parquet",
        "data/validation.parquet",
        "data/test.parquet",
        "data/train.jsonl",
        "data/test.csv",
        "annotations.parquet",
        "annotators.parquet",
        "licenses.csv",
    } <= paths
    manifest = json.loads(_read(version, "manifest.json"))
    assert manifest["recipe"] == version.recipe and manifest["files"] == version.manifest["files"]
    for entry in manifest["files"]:
        assert len(_read(version, entry["path"])) == entry["bytes"]
    items = pd.concat(_frame(version, f"data/{s}.parquet") for s in ("train", "validation", "test"))
    assert len(items) == 10 and items["item_id"].is_unique
    assert set(items.columns) >= {
        "item_id",
        "text",
        "split",
        "majority",
        "dawid_skene",
        "soft_label",
        "n_labels",
    }
    assert all(abs(sum(row) - 1) < 1e-9 for row in items["soft_label"])
    annotations = _frame(version, "annotations.parquet")
    assert len(annotations) == Annotation.objects.filter(project=labelled.project).count()
    assert annotations["annotator"].str.startswith("p-").all()
    # Pseudonyms only: no user id or username anywhere in the bundle.
    for annotator in labelled.annotators:
        assert annotator.username not in _read(version, "annotators.parquet").decode("latin-1")


def test_two_builds_of_one_recipe_have_byte_identical_data_files(labelled) -> None:
    recipe = {"formats": ["jsonl", "csv"], "stable_pseudonyms": True}
    first = build_version(labelled, recipe)
    second = build_version(labelled, recipe)

    assert _data_files(first) == _data_files(second)
    assert first.storage_prefix != second.storage_prefix
    # Without a stable key, pseudonyms differ between versions: not joinable.
    third = build_version(labelled, {"formats": ["jsonl", "csv"]})
    assert _data_files(third)["annotations.parquet"] != _data_files(first)["annotations.parquet"]


def test_every_left_out_reason_counted_with_ids(labelled) -> None:
    items = list(Item.objects.filter(project=labelled.project).order_by("pk"))
    Item.objects.filter(pk=items[0].pk).update(tombstoned_at=timezone.now())
    Item.objects.filter(pk=items[1].pk).update(control=ControlKind.GOLD, expected_value="neither")
    Item.objects.filter(pk=items[2].pk).update(subject_consent=SubjectConsent.NOT_OBTAINED)
    Item.objects.filter(pk=items[3].pk).update(license="LicenseRef-nobody-knows")
    # Only two labels left on item 4: too few for min_labels=3.
    Annotation.objects.filter(item=items[4]).order_by("pk")[0].delete()
    Annotation.objects.filter(item=items[4]).order_by("pk")[0].delete()
    withdrawn = labelled.annotators[3]
    enrolment_withdraw(
        enrolment=Enrolment.objects.get(project=labelled.project, annotator=withdrawn),
        actor=withdrawn,
    )

    dry = dataset_version_dry_run(
        project=labelled.project, actor=labelled.project.owner, recipe={"min_labels": 3}
    )
    version = build_version(labelled, {"min_labels": 3})

    left = version.manifest["left_out"]
    assert left["tombstoned"]["items"] == [items[0].pk]
    assert left["control"]["items"] == [items[1].pk]
    assert left["consent"]["items"] == [items[2].pk]
    assert left["license"]["items"] == [items[3].pk]
    assert items[4].pk in left["too_few_labels"]["items"]
    assert left["withdrawn"]["labels"] > 0
    counts = version.counts["left_out"]
    assert counts == dry.left_out
    kept = sum(version.counts["items"].values())
    assert kept == dry.items == 10 - sum(c["items"] for c in counts.values())
    annotations = _frame(version, "annotations.parquet")
    assert len(annotations) == dry.labels
    assert annotations["annotator"].nunique() == 3


def test_grouped_split_never_puts_one_group_in_two_splits(labelled) -> None:
    for position, item in enumerate(Item.objects.filter(project=labelled.project).order_by("pk")):
        Item.objects.filter(pk=item.pk).update(creator=f"photographer-{position % 4}")
    version = build_version(
        labelled,
        {"split": {"strategy": "grouped", "group_key": "creator", "ratios": [0.5, 0.25, 0.25]}},
    )

    licenses = pd.read_csv(io.BytesIO(_read(version, "licenses.csv")))
    items = pd.concat(_frame(version, f"data/{s}.parquet") for s in ("train", "validation", "test"))
    merged = items.merge(licenses[["item_id", "creator"]], on="item_id")
    assert (merged.groupby("creator")["split"].nunique() == 1).all()


def test_near_duplicate_texts_kept_in_one_split(labelled) -> None:
    items = list(Item.objects.filter(project=labelled.project).order_by("pk"))
    base = SENTENCES[0]
    for item in items[:5]:
        # The same sentence with a word or a mark changed: one cluster.
        Item.objects.filter(pk=item.pk).update(text=base.replace("three", f"{item.pk} or three"))
    version = build_version(labelled, {"split": {"ratios": [0.4, 0.3, 0.3], "seed": 3}})

    items_frame = pd.concat(
        _frame(version, f"data/{s}.parquet") for s in ("train", "validation", "test")
    )
    near = items_frame[items_frame["item_id"].isin([item.pk for item in items[:5]])]
    assert near["split"].nunique() == 1
    assert version.contamination["clusters"] >= 1
    assert version.contamination["crossing_splits"] == 0 and version.contamination["checked"]


def test_csv_cells_defused_against_formula_injection(labelled) -> None:
    item = Item.objects.filter(project=labelled.project).order_by("pk")[0]
    Item.objects.filter(pk=item.pk).update(
        text='=HYPERLINK("http://evil.example","click")', attribution="+cmd|' /C calc'!A0"
    )
    version = build_version(labelled, {"formats": ["csv"]})

    rows = []
    for split in ("train", "validation", "test"):
        rows += list(csv.DictReader(io.StringIO(_read(version, f"data/{split}.csv").decode())))
    cell = next(row["text"] for row in rows if row["item_id"] == str(item.pk))
    assert cell.startswith("'=")
    licenses = list(csv.DictReader(io.StringIO(_read(version, "licenses.csv").decode())))
    assert next(r["attribution"] for r in licenses if r["item_id"] == str(item.pk)).startswith("'+")


def test_numbering_minor_when_data_only_added_major_when_removed(labelled) -> None:
    first = build_version(labelled, {"split": {"seed": 1}})
    second = build_version(labelled, {"split": {"seed": 1}})
    assert (first.label, second.label) == ("v1.0", "v1.1")

    Item.objects.filter(project=labelled.project).order_by("pk").filter(
        pk=Item.objects.filter(project=labelled.project).order_by("pk")[0].pk
    ).update(tombstoned_at=timezone.now())
    third = build_version(labelled, {"split": {"seed": 1}})
    assert third.label == "v2.0"


def test_split_sizes_follow_ratios_and_label_distribution_reported(labelled) -> None:
    version = build_version(
        labelled, {"split": {"strategy": "stratified", "ratios": [0.6, 0.2, 0.2]}}
    )

    sizes = version.counts["items"]
    assert sum(sizes.values()) == 10 and sizes["train"] >= 5
    distribution = version.counts["label_distribution"]
    assert set(distribution) == {"train", "validation", "test"}
    assert sum(Counter(distribution["train"]).values()) == sizes["train"]


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_progress_written_while_reading_through_copy_does_not_block_thebuild_version(
    labelled, monkeypatch
) -> None:
    """On PostgreSQL the build reads through COPY on the connection that also writes the
    progress bar: a progress write during the COPY would wait for it forever."""
    monkeypatch.setattr("ml.build.run.PROGRESS_INTERVAL_S", 0.0)

    version = build_version(labelled)

    assert version.progress_done == version.progress_total > 0


def test_withdrawal_during_a_build_is_not_shipped_the_data_is_read_again(
    labelled, monkeypatch
) -> None:
    """A withdrawal that lands between the build's read and its publication: the build
    reads again, and the version holds none of those labels (nor is it revoked later)."""
    from ml.build import run as build_run

    original = build_run.bundle_write
    withdrawn = labelled.annotators[2]
    calls = []

    def withdraw_meanwhile(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            enrolment_withdraw(
                enrolment=Enrolment.objects.get(project=labelled.project, annotator=withdrawn),
                actor=withdrawn,
            )
        return original(*args, **kwargs)

    monkeypatch.setattr(build_run, "bundle_write", withdraw_meanwhile)

    version = build_version(labelled)

    assert len(calls) == 2
    assert version.counts["annotators"] == 3 and not version.is_revoked
    assert _frame(version, "annotations.parquet")["annotator"].nunique() == 3
