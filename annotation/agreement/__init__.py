"""Disagreement analysis for multi-annotator labels: pure numpy + pandas, no Django.

Every function takes a long label frame with the columns ``item``, ``annotator`` and
``label`` (one row per label; a missing label is an absent row), is vectorised over labels,
deterministic for a given seed, and raises ``ValueError`` on bad input (empty frame,
missing columns, unknown level, a label outside ``categories``, a single annotator where
agreement needs two). ``normalized_entropy`` is the exception: one item's counts, pure
Python, for the labeling services; the rest loads when first used (``__getattr__``), so
importing it costs no pandas.
"""

import importlib
from typing import TYPE_CHECKING, Any

from annotation.agreement.entropy import normalized_entropy

if TYPE_CHECKING:
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

# The vectorised statistics load pandas: imported when first used, so that the labeling
# services can use ``normalized_entropy`` without it.
_LAZY = {
    "DawidSkeneResult": "aggregation",
    "dawid_skene": "aggregation",
    "majority_vote": "aggregation",
    "soft_labels": "aggregation",
    "MISSING_GROUP": "groups",
    "GroupDisagreement": "groups",
    "group_disagreement": "groups",
    "annotator_agreement": "reliability",
    "cohen_kappa": "reliability",
    "fleiss_kappa": "reliability",
    "item_entropy": "reliability",
    "krippendorff_alpha": "reliability",
    "percent_agreement": "reliability",
    "jensen_shannon": "soft",
    "soft_cross_entropy": "soft",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "normalized_entropy",
    "percent_agreement",
    "soft_cross_entropy",
    "soft_labels",
]
