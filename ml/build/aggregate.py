"""The aggregated targets of a version, computed by ``annotation.agreement`` (not here).

Only single-choice schemas (nominal or ordinal) have aggregated targets; every schema
ships its annotator-level labels.
"""

from dataclasses import dataclass

import pandas as pd

from annotation.agreement import dawid_skene, majority_vote, soft_labels
from annotation.schemas import LabelSchema

SINGLE_CHOICE_KINDS = ("ordinal", "nominal")


@dataclass(frozen=True)
class Targets:
    """Per item (indexed by item id): the columns a data file carries for its labels."""

    categories: tuple[str, ...]
    majority: pd.Series | None = None
    majority_tied: pd.Series | None = None
    dawid_skene: pd.Series | None = None
    dawid_skene_confidence: pd.Series | None = None
    soft: pd.DataFrame | None = None

    def hard_label(self) -> pd.Series | None:
        """The label a stratified split balances: majority, else Dawid-Skene."""
        if self.majority is not None:
            return self.majority
        return self.dawid_skene


def single_choice(schema: LabelSchema) -> bool:
    return schema.kind in SINGLE_CHOICE_KINDS


def targets_compute(
    annotations: pd.DataFrame, schema: LabelSchema, targets: tuple[str, ...], *, seed: int
) -> Targets:
    """Majority (ties drawn with ``seed``, and flagged), Dawid-Skene (seeded) and soft
    labels over the categories in the schema's order, for the targets asked for."""
    categories = tuple(schema.values)
    if annotations.empty or not single_choice(schema):
        return Targets(categories=categories)
    frame = pd.DataFrame(
        {
            "item": annotations["item_id"].to_numpy(),
            "annotator": annotations["annotator_id"].to_numpy(),
            "label": annotations["value"].astype(str).to_numpy(),
        }
    )
    majority = tied = ds_label = ds_confidence = soft = None
    if "majority" in targets:
        majority = majority_vote(frame, tie_break="random", seed=seed)
        untied = majority_vote(frame, tie_break="none")
        tied = untied.isna().reindex(majority.index)
    if "dawid_skene" in targets:
        fitted = dawid_skene(frame, categories=list(categories), seed=seed)
        ds_label = fitted.labels
        ds_confidence = fitted.posteriors.max(axis=1)
    if "soft" in targets:
        soft = soft_labels(frame, list(categories))
    return Targets(
        categories=categories,
        majority=majority,
        majority_tied=tied,
        dawid_skene=ds_label,
        dawid_skene_confidence=ds_confidence,
        soft=soft,
    )
