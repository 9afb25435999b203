"""Agreement analysis: the services and selectors that compute with numpy and pandas.

Kept apart from ``annotation.services`` because this is the one part of the app that
computes with pandas (through the pure core ``annotation.agreement``) and draws with
matplotlib. ``annotation.services`` never imports this package, so labeling, enrolment and
assignment load none of it.

Results are kept in ``AgreementAnalysis`` (one row per project and filters) with a
fingerprint of the labels they came from and their plots, drawn when the result is
computed. Reading never writes: ``analysis_get`` hands back what is stored, saying whether
the labels changed since (stale). Only ``analysis_refresh`` (asked for by a researcher's
POST) and ``analysis_compute`` (batch jobs, the demo) compute.

Modules:

- ``service``: filters, the label fingerprint, computing, refreshing and the worker's run.
- ``selectors``: reads of stored results (the analysis, per-item rows, group comparisons).
- ``plots``: the matplotlib SVGs, drawn once per result and read back with ``stored_svg``.

This package re-exports what the rest of Chorus uses; tests that replace a function
patch the module that looks it up.
"""

from annotation.analysis.plots import group_display_name, stored_svg
from annotation.analysis.selectors import (
    ITEM_DISAGREEMENT_ORDERINGS,
    AnalysisRead,
    analysis_categories,
    analysis_get,
    analysis_group_result,
    item_disagreement_list,
    item_disagreement_table,
)
from annotation.analysis.service import (
    NOT_ENOUGH_LABELS,
    analysis_compute,
    analysis_execute,
    analysis_filters_clean,
    analysis_filters_key,
    analysis_refresh,
)

__all__ = [
    "ITEM_DISAGREEMENT_ORDERINGS",
    "NOT_ENOUGH_LABELS",
    "AnalysisRead",
    "analysis_categories",
    "analysis_compute",
    "analysis_filters_clean",
    "analysis_filters_key",
    "analysis_get",
    "analysis_group_result",
    "analysis_refresh",
    "analysis_execute",
    "group_display_name",
    "item_disagreement_list",
    "item_disagreement_table",
    "stored_svg",
]
