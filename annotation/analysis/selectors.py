"""Reading stored agreement analyses: nothing here computes or writes.

``analysis_get`` hands back what is stored for a set of filters, saying whether the labels
changed since (stale); the per-item table, its CSV rows, the categories and the group
comparisons are read from that stored result. Filters are cleaned and the label
fingerprint taken by ``service``, so reads and writes agree on both.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from annotation.analysis.service import (
    ITEM_BATCH_SIZE,
    _single_choice_schema,
    _stored,
    _with_in_progress,
    analysis_filters_clean,
    analysis_label_state,
)
from annotation.models import AgreementAnalysis, ItemDisagreement, Project
from annotation.schemas import LabelSchema
from annotation.surveys import parse_definition
from core.errors import NotFound, ValidationFailed

# Sort keys the per-item table accepts, mapped to what the ORM is given; the item id breaks
# ties so that pages do not overlap.
ITEM_DISAGREEMENT_ORDERINGS: dict[str, tuple[str, ...]] = {
    "entropy": ("entropy", "item_id"),
    "-entropy": ("-entropy", "item_id"),
    "n_labels": ("n_labels", "item_id"),
    "-n_labels": ("-n_labels", "item_id"),
    "ds_confidence": ("ds_confidence", "item_id"),
    "-ds_confidence": ("-ds_confidence", "item_id"),
    "item": ("item_id",),
    "-item": ("-item_id",),
}
DEFAULT_ITEM_ORDERING = "-entropy"


@dataclass(frozen=True)
class AnalysisRead:
    """What a reader is shown for one set of filters, as stored: nothing is computed for it.

    ``analysis`` is ``None`` before the first computation. ``stale``: the labels changed
    since the stored result was computed, or there is none; never said while a
    recomputation is under way (``in_progress``).
    """

    filters: dict[str, str]
    analysis: AgreementAnalysis | None
    in_progress: bool
    stale: bool

    @property
    def needs_refresh(self) -> bool:
        """Worth a refresh: missing, stale, failed, or left running by a lost worker."""
        return not self.in_progress and (
            self.stale
            or self.analysis is None
            or self.analysis.status != AgreementAnalysis.Status.DONE
        )


def analysis_get(
    *, project: Project, filters: Mapping[str, object], with_figures: bool = False
) -> AnalysisRead:
    """The stored analysis for ``filters`` and whether it is stale; reads only.

    Raises ``ValidationFailed`` for bad filters or a schema that is not single-choice.
    The stored plots are loaded only ``with_figures`` (they are most of the row's size).
    A bounded number of queries whatever the project's size: the row, then, unless a
    recomputation is under way, the label fingerprint's aggregates.
    """
    _single_choice_schema(project)
    clean = analysis_filters_clean(project=project, filters=filters)
    stored = _with_in_progress(_stored(project=project, filters=clean))
    analysis = (stored if with_figures else stored.defer("figures")).first()
    in_progress = analysis is not None and bool(getattr(analysis, "job_in_progress", False))
    stale = not in_progress and (
        analysis is None
        or analysis.fingerprint != analysis_label_state(project=project, filters=clean).fingerprint
    )
    return AnalysisRead(filters=clean, analysis=analysis, in_progress=in_progress, stale=stale)


def analysis_categories(
    *, project: Project, analysis: AgreementAnalysis | None
) -> list[dict[str, str]]:
    """The categories as analysed (value and label), or the schema's before a first result."""
    stored = analysis.summary.get("categories") if analysis and analysis.summary else None
    if isinstance(stored, list) and stored:
        return stored
    schema = LabelSchema.from_json(project.label_schema)
    return [{"value": c.value, "label": c.label} for c in schema.choices]


def item_disagreement_list(
    *, analysis: AgreementAnalysis | None, ordering: str | None = None
) -> QuerySet[ItemDisagreement]:
    """The analysis's per-item rows, sorted by an allowlisted key (``-entropy`` by default);
    none before a first result.

    Anything but a key of ``ITEM_DISAGREEMENT_ORDERINGS`` is refused: it is never handed
    to ``order_by``, where a relation path could reach other tables.
    """
    key = ordering or DEFAULT_ITEM_ORDERING
    if key not in ITEM_DISAGREEMENT_ORDERINGS:
        raise ValidationFailed(
            "Unknown ordering.",
            code="invalid_ordering",
            extra={"allowed": list(ITEM_DISAGREEMENT_ORDERINGS)},
        )
    if analysis is None:
        return ItemDisagreement.objects.none()
    return (
        ItemDisagreement.objects.filter(analysis=analysis)
        .select_related("item")
        .order_by(*ITEM_DISAGREEMENT_ORDERINGS[key])
    )


def item_disagreement_table(
    *, analysis: AgreementAnalysis | None, categories: list[str]
) -> tuple[list[str], Iterator[list[object]]]:
    """Header and rows for a CSV download: one row per item, soft label and Dawid-Skene
    posterior spread over one column per category."""
    header = [
        "item",
        "external_id",
        "n_labels",
        "entropy",
        "majority",
        "ds_label",
        "ds_confidence",
        *(f"p_{category}" for category in categories),
        *(f"ds_p_{category}" for category in categories),
    ]

    def rows() -> Iterator[list[object]]:
        queryset = item_disagreement_list(analysis=analysis).values_list(
            "item_id",
            "item__external_id",
            "n_labels",
            "entropy",
            "majority",
            "ds_label",
            "ds_confidence",
            "soft_label",
            "ds_posterior",
        )
        for *fields, soft_label, ds_posterior in queryset.iterator(chunk_size=ITEM_BATCH_SIZE):
            yield [
                *fields,
                *((soft_label or {}).get(category) for category in categories),
                *((ds_posterior or {}).get(category) for category in categories),
            ]

    return header, rows()


def analysis_group_result(
    *, project: Project, analysis: AgreementAnalysis | None, question: str
) -> dict[str, Any]:
    """The stored group comparison for one survey question; 404 for a key not in the survey.

    Reads only. Before a first result for the question it says ``pending``.
    """
    by_key = {q.key: q for q in parse_definition(project.survey)}
    if question not in by_key:
        raise NotFound("This project's survey has no such question.", code="unknown_question")
    groups = analysis.groups if analysis is not None else None
    stored = groups.get(question) if isinstance(groups, dict) else None
    if isinstance(stored, dict):
        return stored
    found = by_key[question]
    return {
        "key": found.key,
        "text": found.text,
        "status": "pending",
        "message": "Not computed yet.",
    }
