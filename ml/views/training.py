"""Training run pages: a project's runs (progress bars), starting a run on a version (the
engine's defaults filled in), and a run's page (metrics, plots, the per-group tables, the
artefacts, cancel). Owners and staff train; auditors read; anyone else gets 404."""

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.surveys import parse_definition
from core.errors import ApplicationError
from core.models import Role
from core.pages import current_user, researcher_required, role_required
from ml import selectors, services
from ml.forms import TARGET_LABELS, TrainingRunForm
from ml.models import TrainingRun
from ml.training.params import hyper_defaults
from ml.training.registry import image_backbones, text_encoders

readers = role_required(Role.RESEARCHER, Role.AUDITOR, staff=True)

METRIC_LABELS = (
    ("accuracy", "Accuracy"),
    ("macro_f1", "Macro-F1"),
    ("ece", "Expected calibration error"),
    ("soft_cross_entropy", "Soft cross-entropy against the annotators (nats)"),
    ("jensen_shannon", "Jensen-Shannon divergence from the annotators (bits)"),
)
PLOTS = (
    ("plots/loss.png", "Training and validation loss per epoch"),
    ("plots/confusion.png", "Confusion matrix on the test split"),
    ("plots/groups.png", "Error rate per group of items"),
)


@readers
@require_GET
def training_list(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project, runs = selectors.training_runs_for(user=user, project_id=project_id)
    shown = list(runs[:100])
    return render(
        request,
        "ml/training_list.html",
        {
            "project": project,
            "runs": shown,
            "can_manage": project.is_managed_by(user),
            "refresh": any(run.status in ("pending", "running") for run in shown),
        },
    )


def _form(version: Any, data: Any = None) -> TrainingRunForm:
    project = version.project
    shipped = [t for t in version.recipe.get("targets", []) if t in TARGET_LABELS]
    if project.modality == "text":
        encoders = [(key, entry.label) for key, entry in text_encoders().items()]
    else:
        encoders = [("", "A small CNN trained from scratch")] + [
            (key, f"{entry.label} (frozen backbone + linear head)")
            for key, entry in image_backbones().items()
        ]
    questions = [(q.key, q.text) for q in parse_definition(project.survey)]
    return TrainingRunForm(
        data,
        modality=project.modality,
        targets=[(t, TARGET_LABELS[t]) for t in shipped],
        encoders=encoders,
        questions=questions,
        defaults=hyper_defaults(project.modality),
    )


@researcher_required
@require_http_methods(["GET", "POST"])
def training_new(request: HttpRequest, version_id: int) -> HttpResponse:
    user = current_user(request)
    version = selectors.dataset_version_manage(user=user, version_id=version_id)
    form = _form(version, request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            run = services.training_run_create(
                version=version, actor=user, request=form.request_json()
            )
            run.refresh_from_db()  # in process (no broker), it has trained already
            messages.success(
                request,
                f"{run.label} is trained."
                if run.status == TrainingRun.Status.DONE
                else f"{run.label} is queued for a GPU worker; this page follows it.",
            )
            return redirect("training-detail", run_id=run.pk)
        except ApplicationError as error:
            form.add_error(None, error.message)
            for name, problems in (error.extra.get("fields") or {}).items():
                form.add_error(None, f"{name}: {problems[0]}")
            status = error.status_code
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "ml/training_new.html",
        {"version": version, "project": version.project, "form": form},
        status=status,
    )


def _metric_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    test, validation = metrics.get("test") or {}, metrics.get("validation") or {}
    return [
        {"label": label, "test": test.get(key), "validation": validation.get(key)}
        for key, label in METRIC_LABELS
    ]


def _confusion(metrics: dict[str, Any]) -> dict[str, Any] | None:
    matrix = (metrics.get("test") or {}).get("confusion")
    classes = metrics.get("classes") or []
    if not matrix or len(matrix) != len(classes):
        return None
    return {
        "classes": classes,
        "rows": [{"label": c, "cells": row} for c, row in zip(classes, matrix, strict=True)],
    }


@readers
@require_GET
def training_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    user = current_user(request)
    run = selectors.training_run_get(user=user, run_id=run_id)
    metrics = run.metrics or {}
    groups = metrics.get("groups") or {}
    servable = run.status == TrainingRun.Status.DONE and not run.is_revoked
    names = {entry["path"] for entry in run.manifest.get("files", [])}
    context = {
        "run": run,
        "project": run.project,
        "version": run.dataset_version,
        "can_manage": run.project.is_managed_by(user),
        "refresh": run.status in ("pending", "running"),
        "metric_rows": _metric_rows(metrics),
        "confusion": _confusion(metrics),
        "item_groups": groups.get("items") or [],
        "annotator_groups": groups.get("annotators") or [],
        "plots": [(path, caption) for path, caption in PLOTS if servable and path in names],
        "files": run.manifest.get("files", []) if servable else [],
        "environment": metrics.get("environment") or {},
        "history": metrics.get("history") or [],
        "encode": metrics.get("encode"),
        "sizes": metrics.get("n") or {},
        "percent": round(100 * run.progress_fraction),
    }
    return render(request, "ml/training_detail.html", context)


@researcher_required
@require_POST
def training_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    user = current_user(request)
    run = selectors.training_run_manage(user=user, run_id=run_id)
    try:
        cancelled = services.training_run_cancel(run=run, actor=user)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("training-detail", run_id=run.pk)
    messages.success(
        request,
        f"{cancelled.label} is cancelled."
        if cancelled.is_finished
        else f"{cancelled.label} stops within a few seconds.",
    )
    return redirect("training-detail", run_id=run.pk)
