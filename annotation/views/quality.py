"""Pages for quality control: a project's gold and attention-check items, and how each
annotator did on them.

The owner and staff mark items; auditors read (``role_required`` refuses their unsafe
requests before any view runs). Annotators never reach these pages, and nothing shown to
them tells a control item from a regular one.
"""

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation import services
from annotation.forms import ControlItemForm
from annotation.models import Item, Project, ProjectStatus
from annotation.selectors import (
    control_accuracy,
    control_item_list,
    item_get_by_external_id,
    project_managed_by,
    project_readable_by_staff_role,
)
from annotation.views._common import staff_role_readers
from core.errors import Conflict
from core.models import User
from core.pages import PAGE_SIZE, current_user, form_submit


@staff_role_readers
@require_http_methods(["GET", "POST"])
def project_controls(request: HttpRequest, project_id: int) -> HttpResponse:
    user = current_user(request)
    if request.method == "POST":
        project = project_managed_by(user=user, project_id=project_id)
    else:
        project = project_readable_by_staff_role(user=user, project_id=project_id)
    schema = services.project_schema(project)
    can_edit = project.status != ProjectStatus.CLOSED and project.is_managed_by(user)
    form = ControlItemForm(request.POST or None, schema=schema) if can_edit else None
    status = 200
    if request.method == "POST":
        if form is None:
            raise Conflict(
                "The project is closed; its items can no longer change.", code="project_closed"
            )
        submission = form_submit(
            form,
            action=lambda: _control_set(project, user, form.cleaned_data),
            on_success=lambda item: _control_saved(request, item),
        )
        if submission.response is not None:
            return submission.response
        status = submission.status
    names = {choice.value: choice.label for choice in schema.choices}
    page = Paginator(control_item_list(project=project), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [{"item": item, "expected": _answer_text(item.expected_value, names)} for item in page]
    context = {
        "project": project,
        "form": form,
        "page": page,
        "rows": rows,
        "accuracy": control_accuracy(project=project),
        "can_edit": can_edit,
    }
    return render(request, "annotation/project_controls.html", context, status=status)


def _control_set(project: Project, user: User, data: dict[str, Any]) -> Item:
    item = item_get_by_external_id(project=project, external_id=data["external_id"])
    return services.item_control_set(
        item=item, actor=user, control=data["control"], expected_value=data["expected_value"]
    )


def _control_saved(request: HttpRequest, item: Item) -> HttpResponse:
    messages.success(request, f"Item {item.external_id} saved.")
    return redirect("research-project-controls", project_id=item.project_id)


def _answer_text(value: object, names: dict[str, str]) -> str:
    """An answer as the schema names it: choice labels, not their values."""
    if value is None:
        return "—"
    values = value if isinstance(value, list) else [value]
    return ", ".join(names.get(str(v), str(v)) for v in values)
