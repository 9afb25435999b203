"""Server-rendered pages: annotators label, researchers run projects, auditors read.

Views are thin: check the role, call a selector or a service, render. An
``ApplicationError`` from a service becomes a page or a form error carrying the error's
HTTP status (400/403/404/409/413), never a 500. Auditors never write: any unsafe method
from an auditor is refused before the view runs.
"""

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any, Concatenate, ParamSpec, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.analysis import (
    AnalysisRead,
    analysis_categories,
    analysis_get,
    analysis_group_result,
    analysis_refresh,
    item_disagreement_list,
)
from annotation.consent import (
    consent_changes,
    enrolment_needs_reconsent,
    project_consent_terms,
)
from annotation.forms import (
    AuditFilterForm,
    ConsentForm,
    ImportForm,
    LabelForm,
    LabelSubmitForm,
    ProjectForm,
    SkipForm,
    SurveyForm,
)
from annotation.ingest import import_batch_create, manifest_columns
from annotation.models import (
    AgreementAnalysis,
    Enrolment,
    Item,
    ItemDisagreement,
    Modality,
    Project,
    ProjectStatus,
)
from annotation.plots import group_display_name, stored_svg
from annotation.schemas import PRESETS
from annotation.selectors import (
    annotation_get_own,
    annotation_list_for,
    annotator_progress,
    annotator_project_rows,
    assignment_current,
    assignment_get_own,
    enrolment_active_count,
    enrolment_get,
    import_batch_list,
    project_get_for,
    project_list_for,
    project_managed_by,
    project_progress,
    project_progress_for,
    project_readable_by_staff_role,
)
from annotation.services import (
    ALLOWED_TRANSITIONS,
    annotation_submit,
    annotation_update,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
    project_consent_text,
    project_create,
    project_schema,
    project_transition,
    project_update,
)
from annotation.surveys import parse_definition
from core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from core.middleware import request_body_limit
from core.models import Role, User
from provenance.selectors import audit_action_list, audit_chain_checkpoint, audit_event_list
from provenance.services import audit_chain_verify, consent_text_version

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TIME_SPENT_MS = 86_400_000
PAGE_SIZE = 50


def item_image_url(item_id: int) -> str:
    """The API's access-checked endpoint serving the sanitised copy of an item's image."""
    return f"/api/v1/items/{int(item_id)}/image/"


def error_page(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    return render(
        request,
        "core/error.html",
        {"status": error.status_code, "message": error.message},
        status=error.status_code,
    )


def current_user(request: HttpRequest) -> User:
    # Only called behind ``role_required``/``login_required``: the user is signed in.
    return cast(User, request.user)


def role_required(*roles: str, staff: bool = False) -> Callable[[View[P]], View[P]]:
    """Signed-in users whose role is one of ``roles`` (or staff, when ``staff``).

    Auditors are read-only everywhere: an unsafe method from one is a 403 whatever the
    page. Service errors the view does not handle itself become an error page.
    """

    def decorator(view: View[P]) -> View[P]:
        def wrapper(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            user = current_user(request)
            if request.method not in SAFE_METHODS and user.is_auditor:
                return error_page(
                    request, PermissionDenied("Auditors have read-only access.", code="read_only")
                )
            if user.role not in roles and not (staff and user.is_staff):
                return error_page(request, PermissionDenied("This page is not for your role."))
            try:
                return view(request, *args, **kwargs)
            except ApplicationError as error:
                return error_page(request, error)

        functools.update_wrapper(wrapper, view)
        return wrapper

    return decorator


annotator_required = role_required(Role.ANNOTATOR)
researcher_required = role_required(Role.RESEARCHER, staff=True)
auditor_required = role_required(Role.AUDITOR, staff=True)


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    if user.is_staff or user.is_researcher:
        return redirect("research-projects")
    if user.is_auditor:
        return redirect("auditor-projects")
    return redirect("annotator-home")


# ---------------------------------------------------------------- annotators


def _active_enrolment(request: HttpRequest, project: Project) -> Enrolment | HttpResponse:
    """The annotator's live enrolment, or the consent page when they have not joined yet or
    the terms changed since they consented."""
    enrolment = enrolment_get(project=project, annotator=current_user(request))
    if enrolment is None:
        return redirect("annotate-consent", project_id=project.pk)
    if not enrolment.is_active:
        raise PermissionDenied("You withdrew from this project.", code="withdrawn")
    if enrolment_needs_reconsent(enrolment):
        return redirect("annotate-consent", project_id=project.pk)
    return enrolment


@annotator_required
@require_GET
def annotator_home(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    page = Paginator(project_list_for(user=user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "project": row.project,
            "enrolment": row.enrolment,
            "progress": row.progress,
            "total": row.progress.labeled + row.progress.remaining if row.progress else 0,
            "reconsent": row.enrolment is not None and enrolment_needs_reconsent(row.enrolment),
        }
        for row in annotator_project_rows(annotator=user, projects=page)
    ]
    return render(request, "annotation/annotator_home.html", {"page": page, "rows": rows})


@annotator_required
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest, project_id: int) -> HttpResponse:
    """Consent to join, or consent again after the terms changed (with what changed)."""
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    enrolment = enrolment_get(project=project, annotator=user)
    reconsent = enrolment is not None and enrolment_needs_reconsent(enrolment)
    if enrolment is not None and enrolment.is_active and not reconsent:
        return redirect("annotate-label", project_id=project.pk)
    consent_text = project_consent_text(project)
    version = consent_text_version(consent_text)
    form = ConsentForm(request.POST or None, initial={"consent_version": version})
    notice = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            enrolment_create(
                project=project,
                annotator=user,
                method="web-form",
                consent_version=form.cleaned_data["consent_version"],
            )
        except ApplicationError as error:
            if error.code == "consent_version_stale":
                # Never record consent to a text the annotator did not see.
                form = ConsentForm(initial={"consent_version": version})
                notice = error.message
            else:
                form.add_error(None, error.message)
            status = error.status_code
        else:
            messages.success(request, "Thank you: your consent is recorded.")
            if parse_definition(project.survey) and not reconsent:
                return redirect("annotate-survey", project_id=project.pk)
            return redirect("annotate-label", project_id=project.pk)
    elif request.method == "POST":
        status = 400
    context = {
        "project": project,
        "terms": project_consent_terms(project),
        "form": form,
        "notice": notice,
        "withdrawn": enrolment is not None and not enrolment.is_active,
        "reconsent": reconsent,
        "changes": consent_changes(enrolment.consent.text, consent_text)
        if enrolment is not None and reconsent
        else [],
        "consented_at": enrolment.consent.given_at if enrolment is not None else None,
    }
    return render(request, "annotation/consent.html", context, status=status)


@annotator_required
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_get_for(user=current_user(request), project_id=project_id)
    enrolment = _active_enrolment(request, project)
    if isinstance(enrolment, HttpResponse):
        return enrolment
    questions = parse_definition(project.survey)
    if not questions:
        return redirect("annotate-label", project_id=project.pk)
    form = SurveyForm(
        request.POST or None, questions=questions, answers=enrolment.survey_answers or {}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                enrolment_survey_submit(enrolment=enrolment, answers=form.answers())
            except ApplicationError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, "Your answers are saved. You can change them later.")
                return redirect("annotate-label", project_id=project.pk)
    context = {"project": project, "form": form, "enrolment": enrolment}
    return render(request, "annotation/survey.html", context, status=status)


def _time_spent_ms(shown_at: int | None) -> int | None:
    if shown_at is None:
        return None
    spent = int(time.time() * 1000) - shown_at
    return spent if 0 <= spent <= MAX_TIME_SPENT_MS else None


def _label_page(
    request: HttpRequest,
    project: Project,
    *,
    form: LabelSubmitForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """Show the item the annotator holds, a button to get one, or the all-done state.

    A read: items are claimed by the POSTs that lead here (``label_next``, a submitted
    label, a skip), never by showing the page.
    """
    user = current_user(request)
    assignment = assignment_current(project=project, annotator=user)
    progress = annotator_progress(project=project, annotator=user)
    schema = project_schema(project)
    context: dict[str, Any] = {
        "project": project,
        "schema": schema,
        "notices": [],
        "progress": progress,
        "total": progress.labeled + progress.remaining + (1 if assignment else 0),
        "assignment": assignment,
        "can_claim": assignment is None and progress.remaining > 0,
    }
    if form is not None and (
        assignment is None or form.data.get("assignment") != str(assignment.pk)
    ):
        # The rejected answer was for another item (or the last one): keep its messages,
        # not its fields.
        context["notices"] = [str(m) for errors in form.errors.values() for m in errors]
        form = None
    if assignment is not None:
        fresh = LabelSubmitForm(
            schema=schema,
            initial={
                "assignment": assignment.pk,
                "item": assignment.item_id,
                "shown_at": int(time.time() * 1000),
            },
        )
        item: Item = assignment.item
        context.update(
            {
                "form": form or fresh,
                "item": item,
                "image_url": item_image_url(item.pk) if item.kind == Modality.IMAGE else "",
                "skip_form": SkipForm(initial={"assignment": assignment.pk}),
                "choices": [
                    {"number": n, "choice": choice}
                    for n, choice in enumerate(schema.choices, start=1)
                ],
            }
        )
    return render(request, "annotation/label.html", context, status=status)


@annotator_required
@require_http_methods(["GET", "POST"])
def label(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    enrolment = _active_enrolment(request, project)
    if isinstance(enrolment, HttpResponse):
        return enrolment
    if request.method == "GET":
        return _label_page(request, project)
    form = LabelSubmitForm(request.POST, schema=project_schema(project))
    if not form.is_valid():
        return _label_page(request, project, form=form, status=400)
    data = form.cleaned_data
    assignment = assignment_get_own(user=user, assignment_id=data["assignment"])
    if assignment.project_id != project.pk or assignment.item_id != data["item"]:
        raise NotFound("No such assignment.")
    try:
        annotation_submit(
            annotator=user,
            item=assignment.item,
            value=data["value"],
            confidence=data["confidence"],
            rationale=data["rationale"],
            time_spent_ms=_time_spent_ms(data.get("shown_at")),
        )
    except ApplicationError as error:
        if isinstance(error, (PermissionDenied, NotFound)):
            raise
        form.add_error(None, error.message)
        return _label_page(request, project, form=form, status=error.status_code)
    following = assignment_next(project=project, annotator=user)
    messages.success(request, "Saved. Here is the next one." if following else "Saved.")
    return redirect("annotate-label", project_id=project.pk)


@annotator_required
@require_POST
def label_next(request: HttpRequest, project_id: int) -> HttpResponse:
    """Claim the next item (or keep the one held) and show it on the label page."""
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    enrolment = _active_enrolment(request, project)
    if isinstance(enrolment, HttpResponse):
        return enrolment
    assignment_next(project=project, annotator=user)
    return redirect("annotate-label", project_id=project.pk)


@annotator_required
@require_POST
def skip(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    form = SkipForm(request.POST)
    if not form.is_valid():
        raise ValidationFailed("Which item do you want to skip?")
    assignment = assignment_get_own(user=user, assignment_id=form.cleaned_data["assignment"])
    if assignment.project_id != project.pk:
        raise NotFound("No such assignment.")
    assignment_skip(assignment=assignment, annotator=user)
    assignment_next(project=project, annotator=user)
    messages.info(request, "Skipped. You will not see that item again.")
    return redirect("annotate-label", project_id=project.pk)


@annotator_required
@require_http_methods(["GET", "POST"])
def withdraw(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    enrolment = enrolment_get(project=project, annotator=user)
    if enrolment is None:
        raise NotFound("You have not joined this project.")
    if request.method == "POST":
        enrolment_withdraw(enrolment=enrolment, actor=user)
        messages.success(
            request, f"You withdrew from “{project.title}”. Your labels will not be used."
        )
        return redirect("annotator-home")
    return render(request, "annotation/withdraw.html", {"project": project, "enrolment": enrolment})


def _value_text(value: Any, names: dict[str, str]) -> str:
    """A stored label as the annotator saw it: choice labels, not their values."""
    values = value if isinstance(value, list) else [value]
    return ", ".join(names.get(str(v), str(v)) for v in values)


@annotator_required
@require_GET
def my_labels(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_get_for(user=user, project_id=project_id)
    schema = project_schema(project)
    names = {choice.value: choice.label for choice in schema.choices}
    page = Paginator(annotation_list_for(user=user, project=project), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [
        {"annotation": annotation, "shown": _value_text(annotation.value, names)}
        for annotation in page
    ]
    context = {
        "project": project,
        "page": page,
        "rows": rows,
        "editable": project.status == ProjectStatus.OPEN,
    }
    return render(request, "annotation/my_labels.html", context)


@annotator_required
@require_http_methods(["GET", "POST"])
def label_edit(request: HttpRequest, annotation_id: int) -> HttpResponse:
    user = current_user(request)
    annotation = annotation_get_own(user=user, annotation_id=annotation_id)
    project = annotation.project
    enrolment = enrolment_get(project=project, annotator=user)
    if request.method == "POST" and enrolment is not None and enrolment_needs_reconsent(enrolment):
        return redirect("annotate-consent", project_id=project.pk)
    schema = project_schema(project)
    initial = {
        "value": annotation.value,
        "confidence": annotation.confidence,
        "rationale": annotation.rationale,
    }
    form = LabelForm(request.POST or None, schema=schema, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                annotation_update(
                    annotation=annotation,
                    annotator=user,
                    value=form.cleaned_data["value"],
                    confidence=form.cleaned_data["confidence"],
                    rationale=form.cleaned_data["rationale"],
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, "Your label is updated.")
                return redirect("annotate-my-labels", project_id=project.pk)
    item = annotation.item
    context = {
        "project": project,
        "annotation": annotation,
        "item": item,
        "image_url": item_image_url(item.pk) if item.kind == Modality.IMAGE else "",
        "form": form,
        "editable": project.status == ProjectStatus.OPEN and not annotation.withdrawn,
    }
    return render(request, "annotation/label_edit.html", context, status=status)


# ---------------------------------------------------------------- researchers


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
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                project = project_create(
                    owner=current_user(request),
                    preset=form.preset_key(),
                    **form.project_fields(),
                )
            except ApplicationError as error:
                form.add_service_errors(error.extra.get("fields") or {}, error.message)
                status = error.status_code
            else:
                messages.success(request, "Project created as a draft. Import items next.")
                return redirect("research-project", project_id=project.pk)
    context = {"form": form, "presets": PRESETS.values(), "creating": True}
    return render(request, "annotation/project_form.html", context, status=status)


@researcher_required
@require_http_methods(["GET", "POST"])
def project_edit(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    project = project_managed_by(user=user, project_id=project_id)
    form = ProjectForm(request.POST or None, project=project)
    status = 200
    unconfirmed: dict[str, Any] | None = None
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                project_update(
                    project=project,
                    actor=user,
                    data=form.project_fields(),
                    confirm_reconsent=request.POST.get("confirm_reconsent") == "yes",
                )
            except ApplicationError as error:
                if error.code == "reconsent_unconfirmed":
                    unconfirmed = {
                        "annotators": error.extra["annotators_to_reconsent"],
                        "fields": [
                            form.fields[name].label or name
                            for name in error.extra["material_fields"]
                        ],
                    }
                else:
                    form.add_service_errors(error.extra.get("fields") or {}, error.message)
                status = error.status_code
            else:
                messages.success(request, "Project saved.")
                return redirect("research-project", project_id=project.pk)
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
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                batch = import_batch_create(
                    project=project, actor=user, upload=form.cleaned_data["upload"]
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                return redirect("research-import-batch", project_id=project.pk, batch_id=batch.pk)
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


# ---------------------------------------------------------------- auditors


@auditor_required
@require_GET
def auditor_projects(request: HttpRequest) -> HttpResponse:
    page = Paginator(project_list_for(user=current_user(request)), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    progress = project_progress_for(projects=list(page))
    rows = [{"project": project, "progress": progress[project.pk]} for project in page]
    return render(request, "annotation/auditor_projects.html", {"page": page, "rows": rows})


@auditor_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    cleaned = dict(form.cleaned_data) if form.is_valid() else {}
    since, until = cleaned.pop("since", None), cleaned.pop("until", None)
    filters = {name: str(value) for name, value in cleaned.items() if value}
    events = audit_event_list(filters=filters, since=since, until=until)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    # Only the events after the checkpoint are checked unless a full check is asked for;
    # either way the check only reads: the schedule and the command move the checkpoint.
    full = request.GET.get("full") == "1"
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("full", None)  # paging on does not repeat a full check
    context = {
        "form": form,
        "page": page,
        "chain": audit_chain_verify(full=full),
        "checkpoint": audit_chain_checkpoint(),
        "actions": audit_action_list(),
        "query": query.urlencode(),
    }
    return render(request, "annotation/audit_log.html", context)


# ---------------------------------------------------------------- agreement analysis

analysis_readers = role_required(Role.RESEARCHER, Role.AUDITOR, staff=True)

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


@analysis_readers
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


@analysis_readers
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
