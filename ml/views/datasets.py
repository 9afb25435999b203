"""Dataset version pages: a project's versions (progress bars), the builder (with the dry
run's counts) and a version's page (splits, label distribution, left out, contamination,
revocation). Owners and staff build; auditors read; anyone else gets 404."""

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.schemas import LabelSchema
from annotation.selectors import project_managed_by
from core.errors import ApplicationError
from core.models import Role
from core.pages import current_user, researcher_required, role_required
from ml import selectors, services
from ml.build.archive import bundle_member_names
from ml.forms import RecipeForm, initial_from
from ml.models import DatasetVersion
from ml.recipes import SPLITS, recipe_from_json

readers = role_required(Role.RESEARCHER, Role.AUDITOR, staff=True)

REASON_LABELS = {
    "withdrawn": "Withdrawn labels (their annotators left the study)",
    "tombstoned": "Taken down",
    "control": "Gold and attention items (never data)",
    "consent": "Consent policy",
    "license": "License does not allow the intended use",
    "too_few_labels": "Too few labels",
}


@readers
@require_GET
def dataset_list(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project, versions = selectors.dataset_versions_for(user=user, project_id=project_id)
    shown = list(versions[:100])
    return render(
        request,
        "ml/dataset_list.html",
        {
            "project": project,
            "versions": shown,
            "can_manage": project.is_managed_by(user),
            # While a build runs, the page follows its progress bar.
            "refresh": any(v.status in ("pending", "running") for v in shown),
        },
    )


def _dry_run_rows(dry: services.DryRun) -> list[dict[str, Any]]:
    return [
        {"reason": REASON_LABELS[reason], "items": counts["items"], "labels": counts["labels"]}
        for reason, counts in dry.left_out.items()
    ]


@researcher_required
@require_http_methods(["GET", "POST"])
def dataset_new(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_managed_by(user=user, project_id=project_id)
    initial: dict[str, Any] = {}
    source = request.GET.get("from")
    if source and source.isdigit():
        base = selectors.dataset_version_get(user=user, version_id=int(source))
        if base.project_id == project.pk:
            initial = initial_from(recipe_from_json(base.recipe))
    form = RecipeForm(request.POST or None, initial=initial)
    context: dict[str, Any] = {"project": project, "form": form, "dry": None}
    status = 200
    if request.method == "POST" and form.is_valid():
        recipe = form.recipe_json()
        try:
            if "dry_run" in request.POST:
                dry = services.dataset_version_dry_run(project=project, actor=user, recipe=recipe)
                context["dry"] = dry
                context["dry_rows"] = _dry_run_rows(dry)
            else:
                version = services.dataset_version_create(
                    project=project, actor=user, recipe=recipe
                )
                messages.success(request, "The build is queued.")
                return redirect("dataset-detail", version_id=version.pk)
        except ApplicationError as error:
            form.add_error(None, error.message)
            for name, problems in (error.extra.get("fields") or {}).items():
                form.add_error(None, f"{name}: {problems[0]}")
            status = error.status_code
    elif request.method == "POST":
        status = 400
    return render(request, "ml/dataset_new.html", context, status=status)


def _distribution(version: DatasetVersion) -> list[dict[str, Any]]:
    distribution = version.counts.get("label_distribution") or {}
    categories = version.manifest.get("categories") or []
    rows = []
    for split in SPLITS:
        counts = distribution.get(split) or {}
        total = sum(counts.values()) or 1
        rows.append(
            {
                "split": split,
                "cells": [
                    {
                        "category": category,
                        "n": counts.get(category, 0),
                        "percent": round(100 * counts.get(category, 0) / total),
                    }
                    for category in categories
                ],
            }
        )
    return rows


@readers
@require_GET
def dataset_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    user = current_user(request)
    version = selectors.dataset_version_get(user=user, version_id=version_id)
    left_out = version.counts.get("left_out") or {}
    items = version.counts.get("items") or {}
    total = sum(items.values()) or 1
    others = (
        DatasetVersion.objects.filter(project=version.project, status=DatasetVersion.Status.DONE)
        .exclude(pk=version.pk)
        .only("pk", "major", "minor")
        .order_by("-major", "-minor")[:20]
    )
    context = {
        "version": version,
        "project": version.project,
        "can_manage": version.project.is_managed_by(user),
        "splits": [
            {
                "split": split,
                "n": items.get(split, 0),
                "percent": round(100 * items.get(split, 0) / total),
            }
            for split in SPLITS
        ],
        "left_out": [
            {"reason": REASON_LABELS.get(reason, reason), **counts}
            for reason, counts in left_out.items()
        ],
        "distribution": _distribution(version),
        "files": version.manifest.get("files", []) if version.is_downloadable else [],
        "members": bundle_member_names(version) if version.is_downloadable else [],
        "others": others,
        "refresh": version.status in ("pending", "running"),
        "recipe_json": json.dumps(version.recipe, indent=2, sort_keys=True),
        "runs": list(selectors.training_runs_of_version(version_id=version.pk)[:50]),
        "trainable": LabelSchema.from_json(version.project.label_schema).is_single_choice,
    }
    return render(request, "ml/dataset_detail.html", context)


@researcher_required
@require_POST
def dataset_rebuild(request: HttpRequest, version_id: int) -> HttpResponse:
    user = current_user(request)
    version = selectors.dataset_version_manage(user=user, version_id=version_id)
    rebuilt = services.dataset_version_rebuild(version=version, actor=user)
    messages.success(request, f"A rebuild of {version.label} is queued.")
    return redirect("dataset-detail", version_id=rebuilt.pk)


@researcher_required
@require_POST
def dataset_retry(request: HttpRequest, version_id: int) -> HttpResponse:
    user = current_user(request)
    version = selectors.dataset_version_manage(user=user, version_id=version_id)
    services.dataset_version_retry(version=version, actor=user)
    messages.success(request, "The build is queued again.")
    return redirect("dataset-detail", version_id=version.pk)
