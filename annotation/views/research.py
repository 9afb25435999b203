"""Researchers' pages (staff too): their projects, creating and editing one, moving it
draft -> open -> closed, importing items and reading an import's bad rows.

Only a project's owner (or staff) reaches these pages for it: anyone else's project
answers 404 (``project_managed_by``).
"""

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.forms import ImportForm, ProjectForm
from annotation.ingest import import_batch_create, manifest_columns
from annotation.models import ImportBatch, Project, ProjectStatus
from annotation.schemas import PRESETS
from annotation.selectors import (
    enrolment_active_count,
    import_batch_list,
    project_list_for,
    project_managed_by,
    project_progress,
)
from annotation.services import (
    ALLOWED_TRANSITIONS,
    project_create,
    project_transition,
    project_update,
)
from core.errors import ApplicationError, NotFound
from core.middleware import request_body_limit
from core.pages import PAGE_SIZE, current_user, form_submit, researcher_required


@researcher_required
@require_GET
def research_projects(request: HttpRequest) -> HttpResponse:
    projects = project_list_for(user=current_user(request))
    page = Paginator(projects, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "annotation/research_projects.html", {"page": page})


@researcher_required
@require_http_methods(["GET", "POST"])
def project_new(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)

    def created(project: Project) -> HttpResponse:
        messages.success(request, "Project created as a draft. Import items next.")
        return redirect("research-project", project_id=project.pk)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: project_create(
                owner=current_user(request),
                preset=form.preset_key(),
                **form.project_fields(),
            ),
            on_success=created,
            on_error=lambda error: form.add_service_errors(
                error.extra.get("fields") or {}, error.message
            ),
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
    context = {"form": form, "presets": PRESETS.values(), "creating": True}
    return render(request, "annotation/project_form.html", context, status=status)


@researcher_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_managed_by(user=user, project_id=project_id)
    form = ProjectForm(request.POST or None, project=project)
    unconfirmed: dict[str, Any] | None = None

    def saved(_: Project) -> HttpResponse:
        messages.success(request, "Project saved.")
        return redirect("research-project", project_id=project.pk)

    def refused(error: ApplicationError) -> None:
        nonlocal unconfirmed
        if error.code == "reconsent_unconfirmed":
            unconfirmed = {
                "annotators": error.extra["annotators_to_reconsent"],
                "fields": [
                    form.fields[name].label or name for name in error.extra["material_fields"]
                ],
            }
        else:
            form.add_service_errors(error.extra.get("fields") or {}, error.message)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: project_update(
                project=project,
                actor=user,
                data=form.project_fields(),
                confirm_reconsent=request.POST.get("confirm_reconsent") == "yes",
            ),
            on_success=saved,
            on_error=refused,
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
    context = {
        "form": form,
        "project": project,
        "creating": False,
        "unconfirmed": unconfirmed,
        "enrolled": enrolment_active_count(project=project),
    }
    return render(request, "annotation/project_form.html", context, status=status)


def _project_page(
    request: HttpRequest, project: Project, *, error: str = "", status: int = 200
) -> HttpResponse:
    progress = project_progress(project=project)
    histogram = [
        {"labels": n, "items": count, "percent": 100 * count / progress.items}
        for n, count in sorted(progress.labels_per_item.items())
    ]
    context = {
        "project": project,
        "progress": progress,
        "histogram": histogram,
        "batches": import_batch_list(project=project)[:5],
        "transitions": sorted(ALLOWED_TRANSITIONS[ProjectStatus(project.status)]),
        "error": error,
    }
    return render(request, "annotation/project_detail.html", context, status=status)


@researcher_required
@require_GET
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_managed_by(user=current_user(request), project_id=project_id)
    return _project_page(request, project)


@researcher_required
@require_POST
def project_status(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_managed_by(user=user, project_id=project_id)
    target = request.POST.get("status", "")
    if target not in ProjectStatus.values:
        return _project_page(request, project, error="Unknown status.", status=400)
    try:
        project_transition(project=project, actor=user, status=target)
    except ApplicationError as error:
        return _project_page(request, project, error=error.message, status=error.status_code)
    messages.success(request, f"The project is now {ProjectStatus(target).label.lower()}.")
    return redirect("research-project", project_id=project.pk)


@request_body_limit("CHORUS_MAX_UPLOAD_BYTES")
@researcher_required
@require_http_methods(["GET", "POST"])
def project_import(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_managed_by(user=user, project_id=project_id)
    form = ImportForm(request.POST or None, request.FILES or None)

    def started(batch: ImportBatch) -> HttpResponse:
        return redirect("research-import-batch", project_id=project.pk, batch_id=batch.pk)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: import_batch_create(
                project=project, actor=user, upload=form.cleaned_data["upload"]
            ),
            on_success=started,
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
    context = {
        "project": project,
        "form": form,
        "batches": import_batch_list(project=project)[:20],
        "modality": project.modality,
        "columns": manifest_columns(project.modality),
    }
    return render(request, "annotation/import.html", context, status=status)


@researcher_required
@require_GET
def import_batch_detail(request: HttpRequest, project_id: int, batch_id: int) -> HttpResponse:
    project = project_managed_by(user=current_user(request), project_id=project_id)
    batch = import_batch_list(project=project).filter(pk=batch_id).first()
    if batch is None:
        raise NotFound("No such import.")
    errors = sorted(
        (e for e in batch.errors if isinstance(e, dict)),
        key=lambda e: (e.get("line") is None, e.get("line") or 0),
    )
    context = {"project": project, "batch": batch, "errors": errors}
    return render(request, "annotation/import_batch.html", context)
