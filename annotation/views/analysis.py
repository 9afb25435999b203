"""Agreement analysis pages: a project's stored agreement result with its plots, the
per-item disagreement table, and the owner's refresh.

Owners, auditors (read-only) and staff read; reading never computes or draws anything
(the plots are stored with the result). Only the owner or staff recompute, by POST.
"""

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotation.analysis import (
    AnalysisRead,
    analysis_categories,
    analysis_get,
    analysis_group_result,
    analysis_refresh,
    group_display_name,
    item_disagreement_list,
    stored_svg,
)
from annotation.models import AgreementAnalysis, ItemDisagreement, Modality, Project
from annotation.selectors import project_managed_by, project_readable_by_staff_role
from annotation.surveys import parse_definition
from annotation.views._common import item_image_url, staff_role_readers
from core.pages import PAGE_SIZE, current_user, researcher_required

ANALYSIS_FILTER_PARAMS = ("since", "until", "question")
CONTESTED_ITEMS_SHOWN = 20
ANNOTATORS_SHOWN = 200
# One colour per category position in the label-spread bars (matplotlib's tab10).
CATEGORY_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _analysis_of(
    request: HttpRequest, project_id: int, *, with_figures: bool = False
) -> tuple[Project, AnalysisRead]:
    """Owner, auditors and staff (404 for anyone else); the analysis stored for the query's
    filters, as it is: reading never computes, a stale result says so (and its owner may
    ask for a refresh, ``analysis_recompute``)."""
    project = project_readable_by_staff_role(user=current_user(request), project_id=project_id)
    filters = {name: request.GET.get(name, "") for name in ANALYSIS_FILTER_PARAMS}
    return project, analysis_get(project=project, filters=filters, with_figures=with_figures)


def _analysis_state(request: HttpRequest, project: Project, read: AnalysisRead) -> dict[str, Any]:
    """What both analysis pages say about the result (``_analysis_status.html``)."""
    can_manage = project.is_managed_by(current_user(request))
    return {
        "project": project,
        "analysis": read.analysis,
        "in_progress": read.in_progress,
        "stale": read.stale,
        "can_manage": can_manage,
        "can_refresh": can_manage and read.needs_refresh,
        "filters": read.filters,
        "query": urlencode(read.filters),
    }


def _category_legend(categories: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        {**category, "color": CATEGORY_COLORS[index % len(CATEGORY_COLORS)]}
        for index, category in enumerate(categories)
    ]


def _disagreement_rows(
    rows: Iterable[ItemDisagreement], legend: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Per-item rows with their label spread as bar segments (width in percent)."""
    names = {category["value"]: category["label"] for category in legend}
    return [
        {
            "row": row,
            "image_url": item_image_url(row.item_id) if row.item.kind == Modality.IMAGE else "",
            "majority": names.get(str(row.majority), "tie") if row.majority else "tie",
            "ds_label": names.get(str(row.ds_label), "") if row.ds_label else "",
            "segments": [
                {
                    "label": category["label"],
                    "color": category["color"],
                    "percent": round(100 * float(row.soft_label.get(category["value"]) or 0), 1),
                }
                for category in legend
                if row.soft_label.get(category["value"])
            ],
        }
        for row in rows
    ]


@staff_role_readers
@require_GET
def analysis_overview(request: HttpRequest, project_id: int) -> HttpResponse:
    """A read: the stored result with the plots stored with it; nothing is computed or
    drawn here (the plots were drawn when the result was computed)."""
    project, read = _analysis_of(request, project_id, with_figures=True)
    analysis = read.analysis
    summary = (analysis.summary if analysis is not None else None) or {}
    figures = analysis.figures if analysis is not None else {}
    legend = _category_legend(analysis_categories(project=project, analysis=analysis))
    sections = []
    for question in parse_definition(project.survey):
        result = analysis_group_result(project=project, analysis=analysis, question=question.key)
        sections.append(
            {
                "question": question,
                "result": result,
                "groups": [
                    {**group, "name": group_display_name(group["group"])}
                    for group in result.get("groups", [])
                ],
                "pairs": [
                    {
                        **pair,
                        "name_a": group_display_name(pair["group_a"]),
                        "name_b": group_display_name(pair["group_b"]),
                    }
                    for pair in result.get("pairs", [])
                ],
                "distribution_svg": stored_svg(figures, "groups", question.key, "distribution"),
                "heatmap_svg": stored_svg(figures, "groups", question.key, "heatmap"),
            }
        )
    stored_annotators = analysis.annotators if analysis is not None else None
    annotators = sorted(
        stored_annotators if isinstance(stored_annotators, list) else [],
        key=lambda row: (-int(row.get("n_labels") or 0), str(row.get("pseudonym"))),
    )
    contested = item_disagreement_list(analysis=analysis, ordering="-entropy")
    context = {
        **_analysis_state(request, project, read),
        "summary": summary,
        "legend": legend,
        "entropy_svg": stored_svg(figures, "entropy"),
        "sections": sections,
        "contested": _disagreement_rows(contested[:CONTESTED_ITEMS_SHOWN], legend),
        "annotators": annotators[:ANNOTATORS_SHOWN],
        "annotators_total": len(annotators),
        "questions": parse_definition(project.survey),
    }
    return render(request, "annotation/analysis.html", context)


@staff_role_readers
@require_GET
def analysis_items(request: HttpRequest, project_id: int) -> HttpResponse:
    project, read = _analysis_of(request, project_id)
    legend = _category_legend(analysis_categories(project=project, analysis=read.analysis))
    page = Paginator(item_disagreement_list(analysis=read.analysis), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        **_analysis_state(request, project, read),
        "legend": legend,
        "page": page,
        "rows": _disagreement_rows(page, legend),
    }
    return render(request, "annotation/analysis_items.html", context)


@researcher_required
@require_POST
def analysis_recompute(request: HttpRequest, project_id: int) -> HttpResponse:
    """The owner's (or staff's) refresh of the analysis for the posted filters: recomputed
    within this request when small, queued for a worker when large; then back to the page,
    which only reads. Auditors are refused (``role_required``), other researchers get 404."""
    project = project_managed_by(user=current_user(request), project_id=project_id)
    filters = {name: request.POST.get(name, "") for name in ANALYSIS_FILTER_PARAMS}
    analysis = analysis_refresh(project=project, filters=filters)
    if analysis.status == AgreementAnalysis.Status.DONE:
        messages.success(request, f"Analysis computed from {analysis.annotation_count} labels.")
    elif analysis.status != AgreementAnalysis.Status.FAILED:  # the page shows a failure itself
        messages.info(request, "Queued: a worker is recomputing the analysis.")
    query = urlencode(analysis.filters) if isinstance(analysis.filters, dict) else ""
    url = reverse("research-analysis", args=[project.pk])
    return redirect(f"{url}?{query}" if query else url)
