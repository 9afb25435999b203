"""Annotators' pages: their projects, consent and the survey, the label page (claim,
label, skip), their own labels and withdrawal.

An annotator sees only the item they hold, never another annotator's label; items are
claimed by POSTs (``label_next``, a submitted label, a skip), never by showing a page.
"""

import time
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotation.consent import (
    consent_changes,
    enrolment_needs_reconsent,
    project_consent_terms,
)
from annotation.forms import (
    ConsentForm,
    LabelForm,
    LabelSubmitForm,
    SkipForm,
    SurveyForm,
)
from annotation.models import (
    Annotation,
    Enrolment,
    Item,
    Modality,
    Project,
    ProjectStatus,
)
from annotation.selectors import (
    annotation_get_own,
    annotation_list_for,
    annotator_progress,
    annotator_project_rows,
    assignment_current,
    assignment_get_own,
    assignment_wait_hint,
    enrolment_get,
    project_get_for,
    project_list_for,
)
from annotation.services import (
    annotation_submit,
    annotation_update,
    assignment_next,
    assignment_skip,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
    project_consent_text,
    project_schema,
)
from annotation.surveys import parse_definition
from annotation.views._common import item_image_url
from core.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from core.pages import PAGE_SIZE, annotator_required, current_user, form_submit
from provenance.services import consent_text_version

MAX_TIME_SPENT_MS = 86_400_000


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

    def consented(_: Enrolment) -> HttpResponse:
        messages.success(request, "Thank you: your consent is recorded.")
        if parse_definition(project.survey) and not reconsent:
            return redirect("annotate-survey", project_id=project.pk)
        return redirect("annotate-label", project_id=project.pk)

    def refused(error: ApplicationError) -> None:
        nonlocal form, notice
        if error.code == "consent_version_stale":
            # Never record consent to a text the annotator did not see.
            form = ConsentForm(initial={"consent_version": version})
            notice = error.message
        else:
            form.add_error(None, error.message)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: enrolment_create(
                project=project,
                annotator=user,
                method="web-form",
                consent_version=form.cleaned_data["consent_version"],
            ),
            on_success=consented,
            on_error=refused,
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
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

    def saved(_: Enrolment) -> HttpResponse:
        messages.success(request, "Your answers are saved. You can change them later.")
        return redirect("annotate-label", project_id=project.pk)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: enrolment_survey_submit(enrolment=enrolment, answers=form.answers()),
            on_success=saved,
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
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
    """Show the item the annotator holds, a button to get one, when to come back (the
    items left are all held by others for now), or the all-done state.

    A read: items are claimed by the POSTs that lead here (``label_next``, a submitted
    label, a skip), never by showing the page.
    """
    user = current_user(request)
    assignment = assignment_current(project=project, annotator=user)
    progress = annotator_progress(project=project, annotator=user)
    schema = project_schema(project)
    can_claim = assignment is None and progress.remaining > 0
    context: dict[str, Any] = {
        "project": project,
        "schema": schema,
        "notices": [],
        "progress": progress,
        "total": progress.labeled + progress.remaining + (1 if assignment else 0),
        "assignment": assignment,
        "can_claim": can_claim,
        # Only on the nothing-left path: one more query there, none on the others.
        "wait": assignment_wait_hint(project=project, annotator=user)
        if assignment is None and not can_claim
        else None,
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

    def submit() -> None:
        data = form.cleaned_data
        assignment = assignment_get_own(user=user, assignment_id=data["assignment"])
        if assignment.project_id != project.pk or assignment.item_id != data["item"]:
            raise NotFound("No such assignment.")
        annotation_submit(
            annotator=user,
            item=assignment.item,
            value=data["value"],
            confidence=data["confidence"],
            rationale=data["rationale"],
            time_spent_ms=_time_spent_ms(data.get("shown_at")),
        )

    def submitted(_: None) -> HttpResponse:
        following = assignment_next(project=project, annotator=user)
        messages.success(request, "Saved. Here is the next one." if following else "Saved.")
        return redirect("annotate-label", project_id=project.pk)

    def refused(error: ApplicationError) -> None:
        # Not the annotator's item to label: an error page, not a message on the form.
        if isinstance(error, (PermissionDenied, NotFound)):
            raise error
        form.add_error(None, error.message)

    submission = form_submit(form, action=submit, on_success=submitted, on_error=refused)
    if submission.response is not None:
        return submission.response
    return _label_page(request, project, form=form, status=submission.status)


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

    def updated(_: Annotation) -> HttpResponse:
        messages.success(request, "Your label is updated.")
        return redirect("annotate-my-labels", project_id=project.pk)

    status = 200
    if request.method == "POST":
        submission = form_submit(
            form,
            action=lambda: annotation_update(
                annotation=annotation,
                annotator=user,
                value=form.cleaned_data["value"],
                confidence=form.cleaned_data["confidence"],
                rationale=form.cleaned_data["rationale"],
            ),
            on_success=updated,
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
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
