"""Pages for governance: the public takedown form, deciding requests, auditor reports.

Apart from the labeling campaign's pages because the audience differs: anyone may file a
takedown; owners and staff decide; auditors read every report and change nothing
(``role_required`` refuses their unsafe requests before any view runs).
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotation import services
from annotation.forms import SubjectConsentForm, TakedownDecisionForm, TakedownForm
from annotation.models import Item, TakedownRequest
from annotation.selectors import (
    FINDINGS_LIMIT,
    LICENSE_CSV_HEADER,
    consent_report,
    item_get_for,
    license_report,
    license_report_rows,
    project_readable_by_staff_role,
    takedown_get_for,
    takedown_list_for,
)
from annotation.views._common import staff_role_readers
from core.csv import csv_text
from core.errors import TooManyRequests, ValidationFailed
from core.net import client_address
from core.pages import PAGE_SIZE, current_user, error_page, researcher_required


@require_http_methods(["GET", "POST"])
def takedown_public(request: HttpRequest) -> HttpResponse:
    """Anyone, signed in or not, can ask for an item to be taken down."""
    form = TakedownForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            filer = services.takedown_throttle(address=client_address(request))
            services.takedown_file(**form.cleaned_data, filer=filer)
        except (TooManyRequests, ValidationFailed) as error:
            return error_page(request, error)
        # The same page whether or not the reference named anything (see takedown_file).
        return render(request, "annotation/takedown_received.html")
    return render(request, "annotation/takedown_form.html", {"form": form})


@staff_role_readers
@require_GET
def takedown_list(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    status = request.GET.get("status", TakedownRequest.Status.OPEN)
    requests = takedown_list_for(user=user, status=status)
    page = Paginator(requests, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "statuses": TakedownRequest.Status.choices,
        "query": f"status={status}",
    }
    return render(request, "annotation/takedown_list.html", context)


@staff_role_readers
@require_http_methods(["GET", "POST"])
def takedown_detail(request: HttpRequest, takedown_id: int) -> HttpResponse:
    user = current_user(request)
    takedown = takedown_get_for(user=user, takedown_id=takedown_id)
    form = TakedownDecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.takedown_decide(
            request=takedown,
            actor=user,
            accept=form.cleaned_data["decision"] == "accept",
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, "Decision recorded.")
        return redirect("takedown-detail", takedown_id=takedown.pk)
    can_decide = takedown.status == TakedownRequest.Status.OPEN and takedown.is_decidable_by(user)
    context = {
        "takedown": takedown,
        "form": form,
        "can_decide": can_decide,
        "show_contact": takedown.is_decidable_by(user),
    }
    return render(request, "annotation/takedown_detail.html", context)


@staff_role_readers
@require_GET
def project_license_report(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_readable_by_staff_role(user=user, project_id=project_id)
    report = license_report(project=project)
    if request.GET.get("format") == "csv":
        response = HttpResponse(
            csv_text(header=LICENSE_CSV_HEADER, rows=license_report_rows(report)),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="licenses-project-{project.pk}.csv"'
        )
        return response
    context = {"project": project, "report": report, "findings_limit": FINDINGS_LIMIT}
    return render(request, "annotation/report_licenses.html", context)


@staff_role_readers
@require_GET
def project_consent_report(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_readable_by_staff_role(user=user, project_id=project_id)
    report = consent_report(project=project)
    context = {
        "project": project,
        "report": report,
        "can_edit": project.is_managed_by(user),
    }
    return render(request, "annotation/report_consent.html", context)


@researcher_required
@require_http_methods(["GET", "POST"])
def item_subject_consent(request: HttpRequest, item_id: int) -> HttpResponse:
    user = current_user(request)
    item: Item = item_get_for(user=user, item_id=item_id)
    form = SubjectConsentForm(
        request.POST or None,
        initial={"status": item.subject_consent, "lawful_basis": "consent"},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.item_subject_consent_set(
            item=item,
            actor=user,
            status=data["status"],
            consent_text=data["consent_text"],
            purposes=data["purposes"],
            lawful_basis=data["lawful_basis"] or "consent",
            evidence=data["evidence"],
            expires_at=data["expires_at"],
        )
        messages.success(request, "Consent status recorded.")
        return redirect("report-consent", project_id=item.project_id)
    return render(request, "annotation/item_subject_consent.html", {"item": item, "form": form})
