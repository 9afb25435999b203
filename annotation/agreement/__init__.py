"""Disagreement analysis for multi-annotator labels: pure numpy + pandas, no Django.

Every function takes a long label frame with the columns ``item``, ``annotator`` and
``label`` (one row per label; a missing label is an absent row), is vectorised over labels,
deterministic for a given seed, and raises ``ValueError`` on bad input (empty frame,
missing columns, unknown level, a label outside ``categories``, a single annotator where
agreement needs two).
"""

from annotation.agreement.aggregation import (
    DawidSkeneResult,
    dawid_skene,
    majority_vote,
    soft_labels,
)
from annotation.agreement.groups import MISSING_GROUP, GroupDisagreement, group_disagreement
from annotation.agreement.reliability import (
    annotator_agreement,
    cohen_kappa,
    fleiss_kappa,
    item_entropy,
    krippendorff_alpha,
    percent_agreement,
)
from annotation.agreement.soft import jensen_shannon, soft_cross_entropy

__all__ = [
    "MISSING_GROUP",
    "DawidSkeneResult",
    "GroupDisagreement",
    "annotator_agreement",
    "cohen_kappa",
    "dawid_skene",
    "fleiss_kappa",
    "group_disagreement",
    "item_entropy",
    "jensen_shannon",
    "krippendorff_alpha",
    "majority_vote",
    "percent_agreement",
    "soft_cross_entropy",
    "soft_labels",
]
