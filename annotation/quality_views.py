"""Pages for quality control: a project's gold and attention-check items, and how each
annotator did on them.

The owner and staff mark items; auditors read (``role_required`` refuses their unsafe
requests before any view runs). Annotators never reach these pages, and nothing shown to
them tells a control item from a regular one.
"""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotation import services
from annotation.forms import ControlItemForm
from annotation.models import ProjectStatus
from annotation.selectors import (
    control_accuracy,
    control_item_list,
    item_get_by_external_id,
    project_managed_by,
    project_readable_by_staff_role,
)
from annotation.views import PAGE_SIZE, current_user, role_required
from core.errors import ApplicationError, Conflict
from core.models import Role

quality_readers = role_required(Role.RESEARCHER, Role.AUDITOR, staff=True)


@quality_readers
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
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                item = item_get_by_external_id(project=project, external_id=data["external_id"])
                services.item_control_set(
                    item=item,
                    actor=user,
                    control=data["control"],
                    expected_value=data["expected_value"],
                )
            except ApplicationError as error:
                form.add_error(None, error.message)
                status = error.status_code
            else:
                messages.success(request, f"Item {item.external_id} saved.")
                return redirect("research-project-controls", project_id=project.pk)
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


def _answer_text(value: object, names: dict[str, str]) -> str:
    """An answer as the schema names it: choice labels, not their values."""
    if value is None:
        return "—"
    values = value if isinstance(value, list) else [value]
    return ", ".join(names.get(str(v), str(v)) for v in values)
