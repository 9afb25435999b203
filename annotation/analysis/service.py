"""Computing agreement analyses: filters, the label fingerprint, compute, refresh and run.

What an analysis reads: the non-withdrawn labels of regular items
(``annotation.selectors.annotations_for_analysis``), never gold or attention items nor
items taken down, optionally restricted by filters ``{"since": "YYYY-MM-DD", "until":
"YYYY-MM-DD", "question": key}`` (labels given on or after / on or before a day, or by
annotators who answered a survey question). Labels of gold and attention items are read
only to score annotators against the researcher's expected answer. Annotators are named
by pseudonym only, in everything stored or returned.

Only ``analysis_refresh`` (asked for by a researcher's POST) and ``analysis_compute``
(batch jobs, the demo) compute: a refresh recomputes a small analysis within its request
and queues a large one for a worker (the job's task is looked up by name, so that this
module never imports ``annotation.tasks``), the previous result
staying readable meanwhile. An analysis is a job of ``core.jobs``: ``analysis_execute``
is its work, in a worker or here (``job_run_here``), under the job's lease. Each result is
stored with its plots (``plots.analysis_figures_draw``), drawn when it is computed.
"""

import hashlib
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import BooleanField, Count, ExpressionWrapper, Max, Q, QuerySet
from django.db.models.functions import Now

from annotation.agreement import (
    MISSING_GROUP,
    DawidSkeneResult,
    annotator_agreement,
    dawid_skene,
    fleiss_kappa,
    group_disagreement,
    item_entropy,
    krippendorff_alpha,
    majority_vote,
    percent_agreement,
    soft_labels,
)
from annotation.analysis.plots import analysis_figures_draw
from annotation.models import (
    AgreementAnalysis,
    Annotation,
    ControlKind,
    Enrolment,
    ItemDisagreement,
    Project,
)
from annotation.schemas import LabelSchema, answers_match
from annotation.selectors import annotations_for_analysis
from annotation.surveys import PREFER_NOT_TO_SAY, Question, parse_definition
from annotation.task_names import ANALYSIS_TIME_LIMIT_S
from core.errors import ApplicationError, ValidationFailed
from core.jobs import JobRun, LeaseLost, job_enqueue, job_fresh_fields
from core.jobs.runner import job_run_here

logger = logging.getLogger(__name__)

FILTER_KEYS = ("since", "until", "question")
SINGLE_CHOICE_KINDS = ("ordinal", "nominal")
NOT_ENOUGH_LABELS = (
    "Not enough labels yet: agreement needs at least two annotators who labelled the same item."
)
GROUP_PERMUTATIONS = 1000
ENTROPY_BINS = 10
ITEM_BATCH_SIZE = 2000
RANDOM_SEED = 0
# A queued or running analysis untouched for this long is taken to be lost (a killed worker
# or web process) and may be started again. Also the task's hard time limit.
# The registered name of the task that computes a queued analysis (``annotation.tasks``).


# ---------------------------------------------------------------- filters and the labels read


def _single_choice_schema(project: Project) -> LabelSchema:
    schema = LabelSchema.from_json(project.label_schema)
    if schema.kind not in SINGLE_CHOICE_KINDS:
        raise ValidationFailed(
            "Agreement analysis supports single-choice schemas (ordinal or nominal); "
            f"this project's schema is {schema.kind.replace('_', '-')}.",
            code="unsupported_schema",
        )
    return schema


def _date_filter(name: str, raw: object) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str) and len(raw) <= 32:
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValidationFailed(f"{name} must be a date (YYYY-MM-DD).", code="invalid_filters")


def analysis_filters_clean(*, project: Project, filters: Mapping[str, object]) -> dict[str, str]:
    """The canonical form of analysis filters; empty values are dropped.

    ``since``/``until`` become ISO dates, ``question`` must be a key of the project's survey.
    """
    unknown = sorted(str(name) for name in filters if name not in FILTER_KEYS)
    if unknown:
        raise ValidationFailed(
            f"Unknown filters: {', '.join(unknown)}.",
            code="invalid_filters",
            extra={"allowed": list(FILTER_KEYS)},
        )
    clean: dict[str, str] = {}
    days: dict[str, date] = {}
    for name in ("since", "until"):
        raw = filters.get(name)
        if raw is None or raw == "":
            continue
        days[name] = _date_filter(name, raw)
        clean[name] = days[name].isoformat()
    if "since" in days and "until" in days and days["since"] > days["until"]:
        raise ValidationFailed("since must not be after until.", code="invalid_filters")
    question = filters.get("question")
    if question is not None and question != "":
        keys = {q.key for q in parse_definition(project.survey)}
        if not isinstance(question, str) or question not in keys:
            raise ValidationFailed(
                "This project's survey has no such question.", code="unknown_question"
            )
        clean["question"] = question
    return clean


def analysis_filters_key(filters: Mapping[str, str]) -> str:
    """sha256 of the canonical JSON of cleaned filters: the analysis row's identity."""
    canonical = json.dumps(dict(filters), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _declined(answer: object) -> bool:
    return answer in (None, "", [], PREFER_NOT_TO_SAY, [PREFER_NOT_TO_SAY])


def _annotators_who_answered(project: Project, key: str) -> list[int]:
    # Filtered in Python: a survey key used as an ORM lookup path could name a lookup.
    return [
        annotator_id
        for annotator_id, answers in Enrolment.objects.filter(project=project).values_list(
            "annotator_id", "survey_answers"
        )
        if isinstance(answers, dict) and not _declined(answers.get(key))
    ]


def _labels_read(*, project: Project, filters: Mapping[str, str]) -> QuerySet[Annotation]:
    """Every label an analysis reads: non-withdrawn, on items not taken down, filtered.

    Regular and control items both: control labels only score annotators.
    """
    queryset = annotations_for_analysis(project=project).filter(item__tombstoned_at__isnull=True)
    if "since" in filters:
        queryset = queryset.filter(created_at__date__gte=date.fromisoformat(filters["since"]))
    if "until" in filters:
        queryset = queryset.filter(created_at__date__lte=date.fromisoformat(filters["until"]))
    if "question" in filters:
        queryset = queryset.filter(
            annotator_id__in=_annotators_who_answered(project, filters["question"])
        )
    return queryset


@dataclass(frozen=True)
class LabelState:
    """How many labels an analysis would use now, and a fingerprint of what it would read."""

    count: int
    fingerprint: str


def analysis_label_state(*, project: Project, filters: Mapping[str, str]) -> LabelState:
    """Count and fingerprint of the labels read (count, latest edit and highest id), plus the
    latest survey answer and the schema and survey: a label added, edited or withdrawn, an
    item taken down or turned into a control item, or a changed survey answer changes it.
    """
    stats = _labels_read(project=project, filters=filters).aggregate(
        total=Count("id"),
        regular=Count("id", filter=Q(item__control=ControlKind.NONE)),
        latest=Max("updated_at"),
        last=Max("id"),
    )
    answered = Enrolment.objects.filter(project=project).aggregate(
        latest=Max("survey_answered_at")
    )["latest"]
    parts = [
        stats["total"],
        stats["latest"].isoformat() if stats["latest"] else "",
        stats["last"] or 0,
        answered.isoformat() if answered else "",
        json.dumps(project.label_schema, sort_keys=True),
        json.dumps(project.survey, sort_keys=True),
    ]
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return LabelState(count=stats["regular"], fingerprint=digest)


# ---------------------------------------------------------------- computing


def _number(value: object, digits: int = 6) -> float | None:
    """A finite float for JSON, rounded; NaN and infinities (undefined statistics) are None."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]  # numpy and pandas scalars convert
    return round(number, digits) if math.isfinite(number) else None


def _category(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


@dataclass
class _Result:
    annotation_count: int
    summary: dict[str, Any]
    annotators: list[dict[str, Any]]
    groups: dict[str, dict[str, Any]]
    items: list[ItemDisagreement]


def _entropy_histogram(values: "pd.Series[float]") -> list[dict[str, Any]]:
    counts, edges = np.histogram(values.to_numpy(dtype=float), bins=ENTROPY_BINS, range=(0, 1))
    return [
        {"low": round(float(edges[i]), 3), "high": round(float(edges[i + 1]), 3), "items": int(n)}
        for i, n in enumerate(counts)
    ]


def _control_scores(rows: list[tuple[str, str, Any, Any]]) -> dict[str, dict[str, int]]:
    """Per pseudonym: labels on gold/attention items and how many equal the expected answer."""
    scores: dict[str, dict[str, int]] = {}
    for pseudonym, control, value, expected in rows:
        score = scores.setdefault(
            pseudonym, {"gold_n": 0, "gold_correct": 0, "attention_n": 0, "attention_correct": 0}
        )
        kind = "gold" if control == ControlKind.GOLD else "attention"
        score[f"{kind}_n"] += 1
        score[f"{kind}_correct"] += int(answers_match(value, expected))
    return scores


def _annotator_rows(
    frame: pd.DataFrame,
    agreement: pd.DataFrame | None,
    controls: dict[str, dict[str, int]],
) -> list[dict[str, Any]]:
    n_labels = frame["annotator"].value_counts()
    rows = []
    for pseudonym in sorted(set(n_labels.index) | set(controls)):
        score = controls.get(pseudonym, {})
        row: dict[str, Any] = {
            "pseudonym": pseudonym,
            "n_labels": int(n_labels.get(pseudonym, 0)),
            "n_compared": 0,
            "majority_agreement": None,
            "alpha_without": None,
        }
        if agreement is not None and pseudonym in agreement.index:
            stats = agreement.loc[pseudonym]
            row["n_compared"] = int(stats["n_compared"])
            row["majority_agreement"] = _number(stats["majority_agreement"])
            row["alpha_without"] = _number(stats["alpha_without"])
        for kind in ("gold", "attention"):
            n, correct = score.get(f"{kind}_n", 0), score.get(f"{kind}_correct", 0)
            row[f"{kind}_n"] = n
            row[f"{kind}_correct"] = correct
            row[f"{kind}_accuracy"] = _number(correct / n) if n else None
        rows.append(row)
    return rows


def _skipped_group(question: Question, message: str) -> dict[str, Any]:
    return {"key": question.key, "text": question.text, "status": "skipped", "message": message}


def _group_result(
    question: Question,
    frame: pd.DataFrame,
    answers: dict[str, dict[str, Any]],
    level: str,
    categories: list[str],
) -> dict[str, Any]:
    if question.kind != "single":
        return _skipped_group(
            question, "Only single-choice questions split annotators into groups."
        )
    groups = {
        pseudonym: answer
        for pseudonym in frame["annotator"].unique()
        if isinstance(answer := answers.get(pseudonym, {}).get(question.key), str)
    }
    if len({groups.get(pseudonym, MISSING_GROUP) for pseudonym in frame["annotator"]}) < 2:
        return _skipped_group(
            question, "Every annotator gave the same answer (or none), so no groups to compare."
        )
    try:
        result = group_disagreement(
            frame,
            groups,
            level=level,
            categories=categories,
            n_permutations=GROUP_PERMUTATIONS,
            seed=RANDOM_SEED,
            missing="own_group",
        )
    except ValueError as error:
        return _skipped_group(question, str(error))
    effect_kind = "js_divergence" if level == "nominal" else "mean_difference"
    group_rows = []
    for name, stats in result.groups.iterrows():
        distribution = result.label_distribution.loc[name]
        group_rows.append(
            {
                "group": str(name),
                "n_annotators": int(stats["n_annotators"]),
                "n_labels": int(stats["n_labels"]),
                "alpha": _number(stats["alpha"]),
                "mean_label": _number(stats["mean_label"]) if "mean_label" in stats else None,
                "distribution": {str(c): _number(distribution[c]) or 0.0 for c in categories},
            }
        )
    pairs = [
        {
            "group_a": str(pair["group_a"]),
            "group_b": str(pair["group_b"]),
            "n_shared_items": int(pair["n_shared_items"]),
            "xrr": _number(pair["xrr"]),
            "effect": _number(pair[effect_kind]),
            "effect_kind": effect_kind,
            "p_value": _number(pair["p_value"]),
        }
        for pair in result.pairs.to_dict("records")
    ]
    return {
        "key": question.key,
        "text": question.text,
        "status": "done",
        "message": "",
        "n_permutations": result.n_permutations,
        "groups": group_rows,
        "pairs": pairs,
    }


def _distributions(frame: pd.DataFrame) -> dict[Any, dict[str, float]]:
    """Item -> {category: probability} from an item x category frame, rounded for JSON."""
    return {
        item: {str(c): _number(p) or 0.0 for c, p in row.items()}
        for item, row in frame.to_dict("index").items()
    }


def _item_rows(
    analysis: AgreementAnalysis,
    frame: pd.DataFrame,
    categories: list[str],
    entropy: "pd.Series[float]",
    ds: DawidSkeneResult | None,
) -> list[ItemDisagreement]:
    # Plain dicts, not per-row pandas lookups: this loop runs once per item.
    majority = majority_vote(frame, tie_break="none").to_dict()
    soft = _distributions(soft_labels(frame, categories))
    n_labels = frame["item"].value_counts().to_dict()
    posteriors = _distributions(ds.posteriors) if ds is not None else {}
    ds_labels = ds.labels.to_dict() if ds is not None else {}
    rows = []
    for item_id, item_entropy_value in entropy.to_dict().items():
        posterior = posteriors.get(item_id, {})
        rows.append(
            ItemDisagreement(
                analysis=analysis,
                item_id=int(item_id),
                n_labels=int(n_labels[item_id]),
                entropy=_number(item_entropy_value) or 0.0,
                majority=_category(majority.get(item_id)),
                soft_label=soft[item_id],
                ds_label=_category(ds_labels.get(item_id)),
                ds_confidence=max(posterior.values()) if posterior else None,
                ds_posterior=posterior,
            )
        )
    return rows


def _compute(analysis: AgreementAnalysis, filters: Mapping[str, str]) -> _Result:
    project = analysis.project
    schema = _single_choice_schema(project)
    level = schema.kind
    categories = list(schema.values)
    rows = list(
        _labels_read(project=project, filters=filters).values_list(
            "item_id", "annotator__pseudonym", "value", "item__control", "item__expected_value"
        )
    )
    regular = [
        (item, pseudonym, value)
        for item, pseudonym, value, control, _ in rows
        if control == ControlKind.NONE and isinstance(value, str) and value in categories
    ]
    ignored = sum(1 for row in rows if row[3] == ControlKind.NONE) - len(regular)
    controls = _control_scores(
        [
            (pseudonym, control, value, expected)
            for _, pseudonym, value, control, expected in rows
            if control != ControlKind.NONE
        ]
    )
    frame = pd.DataFrame(regular, columns=["item", "annotator", "label"])
    labels_per_item = frame["item"].value_counts()
    n_annotators = int(frame["annotator"].nunique())
    pairable = int((labels_per_item >= 2).sum())
    enough = n_annotators >= 2 and pairable >= 1
    label_counts = frame["label"].value_counts()
    summary: dict[str, Any] = {
        "enough_data": enough,
        "message": "" if enough else NOT_ENOUGH_LABELS,
        "level": level,
        "categories": [{"value": c.value, "label": c.label} for c in schema.choices],
        "n_items": int(len(labels_per_item)),
        "n_items_pairable": pairable,
        "n_labels": len(frame),
        "n_labels_ignored": ignored,
        "n_annotators": n_annotators,
        "label_counts": {c: int(label_counts.get(c, 0)) for c in categories},
        "alpha": None,
        "percent_agreement": None,
        "fleiss_kappa": None,
        "ds_log_likelihood": None,
        "ds_iterations": None,
        "mean_entropy": None,
        "entropy_histogram": [],
    }
    agreement = None
    ds = None
    if enough:
        summary["alpha"] = _number(krippendorff_alpha(frame, level=level, categories=categories))
        summary["percent_agreement"] = _number(percent_agreement(frame))
        per_item = labels_per_item.unique()
        if len(per_item) == 1 and per_item[0] >= 2:
            summary["fleiss_kappa"] = _number(fleiss_kappa(frame, categories=categories))
        ds = dawid_skene(frame, categories=categories, seed=RANDOM_SEED)
        summary["ds_log_likelihood"] = _number(ds.log_likelihood, 3)
        summary["ds_iterations"] = ds.n_iter
        agreement = annotator_agreement(frame, level=level, categories=categories)
    items: list[ItemDisagreement] = []
    if len(frame):
        entropy = item_entropy(frame, categories=categories)
        items = _item_rows(analysis, frame, categories, entropy, ds)
        # Items with one label have entropy 0 by definition: they would only dilute these.
        contested = entropy[labels_per_item.reindex(entropy.index) >= 2]
        if len(contested):
            summary["mean_entropy"] = _number(contested.mean())
            summary["entropy_histogram"] = _entropy_histogram(contested)
    answers = {
        pseudonym: survey_answers if isinstance(survey_answers, dict) else {}
        for pseudonym, survey_answers in Enrolment.objects.filter(project=project).values_list(
            "annotator__pseudonym", "survey_answers"
        )
    }
    groups = {
        question.key: (
            _group_result(question, frame, answers, level, categories)
            if enough
            else _skipped_group(question, NOT_ENOUGH_LABELS)
        )
        for question in parse_definition(project.survey)
    }
    return _Result(
        annotation_count=len(frame),
        summary=summary,
        annotators=_annotator_rows(frame, agreement, controls),
        groups=groups,
        items=items,
    )


def _failure_message(error: Exception) -> str:
    if isinstance(error, SoftTimeLimitExceeded):
        return f"The analysis ran over its time limit ({ANALYSIS_TIME_LIMIT_S // 60} minutes)."
    if isinstance(error, ApplicationError):
        return error.message
    if isinstance(error, ValueError):
        return f"The analysis could not be computed: {error}"
    return "The analysis failed unexpectedly; the error has been logged for the operators."


def analysis_execute(run: JobRun[AgreementAnalysis]) -> None:
    """Compute and store a claimed analysis (the work of its job, in a worker or here).

    On a problem with the data store ``failed`` with a message; transient database errors
    propagate so that ``core.jobs`` retries. The result is stored only while this run
    holds the analysis's lease.
    """
    analysis = AgreementAnalysis.objects.select_related("project").get(pk=run.job.pk)
    fingerprint = ""
    try:
        filters = analysis_filters_clean(project=analysis.project, filters=analysis.filters)
        # Taken before reading: labels arriving meanwhile make the result stale, not lost.
        fingerprint = analysis_label_state(project=analysis.project, filters=filters).fingerprint
        result = _compute(analysis, filters)
        # Drawn here, once per result, so that pages only read them (and outside the lock).
        figures = analysis_figures_draw(summary=result.summary, groups=result.groups)
        with transaction.atomic():
            locked = AgreementAnalysis.objects.select_for_update().get(pk=analysis.pk)
            ItemDisagreement.objects.filter(analysis=locked).delete()
            ItemDisagreement.objects.bulk_create(result.items, batch_size=ITEM_BATCH_SIZE)
            run.complete(
                annotation_count=result.annotation_count,
                fingerprint=fingerprint,
                summary=result.summary,
                annotators=result.annotators,
                groups=result.groups,
                figures=figures,
                computed_at=Now(),
            )
    except (DatabaseError, LeaseLost):
        raise
    except Exception as error:
        # Whatever else went wrong, the row must not stay "running": pages would wait.
        logger.exception("agreement analysis %s failed", analysis.pk)
        with transaction.atomic():
            run.fail(_failure_message(error), fingerprint=fingerprint, computed_at=Now())


def _analysis_row(*, project: Project, filters: dict[str, str]) -> AgreementAnalysis:
    analysis, _ = AgreementAnalysis.objects.get_or_create(
        project=project, filters_key=analysis_filters_key(filters), defaults={"filters": filters}
    )
    return analysis


def analysis_compute(*, project: Project, filters: Mapping[str, object]) -> AgreementAnalysis:
    """Compute the project's analysis for ``filters`` now and store it (status done/failed).

    Replaces the analysis's per-item rows. Raises ``ValidationFailed`` before anything is
    stored for a schema that is not single-choice or for bad filters; any later error is
    stored on the analysis (status ``failed``) instead of being raised.
    """
    _single_choice_schema(project)
    clean = analysis_filters_clean(project=project, filters=filters)
    analysis = _analysis_row(project=project, filters=clean)
    # Queued afresh and run here: a run elsewhere that still holds it loses its lease.
    AgreementAnalysis.objects.filter(pk=analysis.pk).update(**job_fresh_fields())
    job_run_here(AgreementAnalysis, analysis.pk)
    analysis.refresh_from_db()
    return analysis


def _stored(*, project: Project, filters: dict[str, str]) -> QuerySet[AgreementAnalysis]:
    return AgreementAnalysis.objects.filter(
        project=project, filters_key=analysis_filters_key(filters)
    )


def _in_progress() -> Q:
    """Queued (a message is on its way; the sweeper re-sends a lost one) or running under a
    live lease, on the database's clock: someone is on it."""
    return Q(status=AgreementAnalysis.Status.PENDING) | Q(
        status=AgreementAnalysis.Status.RUNNING, lease_expires_at__gte=Now()
    )


def _with_in_progress(rows: QuerySet[AgreementAnalysis]) -> QuerySet[AgreementAnalysis]:
    """``rows`` with ``job_in_progress`` (see ``_in_progress``), read in the same query."""
    return rows.annotate(
        job_in_progress=ExpressionWrapper(_in_progress(), output_field=BooleanField())
    )


def analysis_refresh(
    *, project: Project, filters: Mapping[str, object], inline_limit: int | None = None
) -> AgreementAnalysis:
    """Bring the analysis for ``filters`` up to date because a researcher asked: the write
    behind the refresh page and endpoint (POST). Reading never calls it.

    Queued or running: returned as is, someone is on it. Done from the labels as they are
    now: returned as is. Otherwise (missing, stale, failed, or its worker died) the row is
    claimed by a conditional UPDATE, so that two requests at once compute it once; then,
    with at most ``inline_limit`` labels (default ``settings.CHORUS_ANALYSIS_INLINE_LIMIT``),
    it is recomputed here, and with more it is queued as a job once this transaction
    commits, its previous results staying readable until the worker replaces them. Raises
    ``QueueUnavailable`` (503) when the job queue cannot be reached; the job stays queued
    and the sweeper sends it once the queue is back.
    """
    _single_choice_schema(project)
    clean = analysis_filters_clean(project=project, filters=filters)
    limit = settings.CHORUS_ANALYSIS_INLINE_LIMIT if inline_limit is None else inline_limit
    analysis = _with_in_progress(_stored(project=project, filters=clean)).first()
    if analysis is not None and getattr(analysis, "job_in_progress", False):
        return analysis
    state = analysis_label_state(project=project, filters=clean)
    if (
        analysis is not None
        and analysis.status == AgreementAnalysis.Status.DONE
        and analysis.fingerprint == state.fingerprint
    ):
        return analysis
    created = False
    if analysis is None:
        analysis, created = AgreementAnalysis.objects.get_or_create(
            project=project, filters_key=analysis_filters_key(clean), defaults={"filters": clean}
        )
    dispatch = None
    with transaction.atomic():
        rows = AgreementAnalysis.objects.filter(pk=analysis.pk)
        # A row this call created is pending by default and nobody else's yet.
        claimed = (rows if created else rows.exclude(_in_progress())).update(**job_fresh_fields())
        if claimed and state.count > limit:
            dispatch = job_enqueue(analysis)
    if claimed and dispatch is None:
        job_run_here(AgreementAnalysis, analysis.pk)
    analysis.refresh_from_db()
    if dispatch is not None:
        dispatch.raise_if_failed(what="The analysis")
    return analysis
