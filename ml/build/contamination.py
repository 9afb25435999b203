"""The contamination guard of a version: duplicate and near-duplicate clusters, kept each
in one split, and the check of one version's test split against another's train split.

The clustering itself is ``ml.engine.neardup`` (pure); this module feeds it a version's
items and reads the items of two versions for the cross check.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from annotation.models import Item, Modality
from ml.engine import neardup
from ml.membership import Membership
from ml.models import DatasetVersion
from ml.recipes import SPLITS, NearDuplicateRecipe, Recipe

# Clusters listed in full in the summary; the rest are counted.
LISTED_CLUSTERS = 200


@dataclass(frozen=True)
class ContaminationResult:
    clusters: dict[int, int]  # item id -> cluster id, for items in clusters of 2 or more
    report: neardup.ClusterReport
    thresholds: NearDuplicateRecipe
    image_project: bool
    crossing: list[Any] = field(default_factory=list)
    checked: bool = False

    def with_splits(self, splits: pd.Series) -> "ContaminationResult":
        crossing = neardup.clusters_crossing(self.report, splits.to_dict())
        return replace(self, crossing=list(crossing), checked=True)

    def summary(self) -> dict[str, Any]:
        clusters = self.report.clusters
        return {
            "method": {
                "exact": "sha256 of the content",
                "near": (
                    f"perceptual hash within Hamming distance {self.thresholds.image_max_distance}"
                    if self.image_project
                    else "normalised text hash, and MinHash LSH on character shingles at "
                    f"Jaccard >= {self.thresholds.text_threshold}"
                ),
            },
            "clusters": len(clusters),
            "items_in_clusters": sum(len(c.members) for c in clusters),
            "listed": [
                {"members": list(c.members), "reasons": list(c.reasons)}
                for c in clusters[:LISTED_CLUSTERS]
            ],
            "crossing_splits": len(self.crossing),
            "checked": self.checked,
        }


def contamination_check(
    items: pd.DataFrame, recipe: Recipe, *, image_project: bool
) -> ContaminationResult:
    # Hashes and texts go as the columns themselves: neardup codes the hashes without a
    # Python string per item and reads the texts a slice at a time. ``tolist`` is 4x faster
    # than iterating an Arrow-backed column.
    ids = items["item_id"].astype("int64").tolist()
    thresholds = recipe.near_duplicates
    if image_project:
        report = neardup.find_clusters(
            ids,
            sha256=items["sha256"],
            phashes=items["phash"].tolist(),
            image_max_distance=thresholds.image_max_distance,
        )
    else:
        report = neardup.find_clusters(
            ids,
            sha256=items["sha256"],
            texts=items["text"],
            text_threshold=thresholds.text_threshold,
        )
    return ContaminationResult(
        clusters=report.mapping(),
        report=report,
        thresholds=thresholds,
        image_project=image_project,
    )


def _items_of(version: DatasetVersion, split: str) -> pd.DataFrame:
    membership = Membership.from_bytes(bytes(version.membership))
    code = SPLITS.index(split)
    ids = [int(pk) for pk in membership.item_ids[membership.splits == code]]
    rows = (
        Item.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "sha256", "text", "phash")
    )
    return pd.DataFrame.from_records(list(rows), columns=["item_id", "sha256", "text", "phash"])


def cross_version_check(
    *, test_of: DatasetVersion, train_of: DatasetVersion
) -> list[dict[str, Any]]:
    """Items of ``test_of``'s test split that duplicate or nearly duplicate an item of
    ``train_of``'s train split, with the thresholds of ``test_of``'s recipe."""
    recipe: Mapping[str, Any] = test_of.recipe.get("near_duplicates", {})
    thresholds = NearDuplicateRecipe(
        text_threshold=float(recipe.get("text_threshold", 0.8)),
        image_max_distance=int(recipe.get("image_max_distance", 6)),
    )
    test = _items_of(test_of, "test")
    train = _items_of(train_of, "train")
    image_project = test_of.project.modality == Modality.IMAGE
    matches = neardup.cross_matches(
        list(test["item_id"]),
        list(train["item_id"]),
        a_sha256=list(test["sha256"]),
        b_sha256=list(train["sha256"]),
        a_texts=None if image_project else list(test["text"]),
        b_texts=None if image_project else list(train["text"]),
        a_phashes=list(test["phash"]) if image_project else None,
        b_phashes=list(train["phash"]) if image_project else None,
        text_threshold=thresholds.text_threshold,
        image_max_distance=thresholds.image_max_distance,
    )
    return [
        {"test_item": a, "train_item": b, "score": score, "reason": reason}
        for a, b, score, reason in matches
    ]
