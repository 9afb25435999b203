"""Auditors' pages (staff too), read-only: every project with its progress."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation.selectors import project_list_for, project_progress_for
from core.pages import PAGE_SIZE, auditor_required, current_user


@auditor_required
@require_GET
def auditor_projects(request: HttpRequest) -> HttpResponse:
    page = Paginator(project_list_for(user=current_user(request)), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    progress = project_progress_for(projects=list(page))
    rows = [{"project": project, "progress": progress[project.pk]} for project in page]
    return render(request, "annotation/auditor_projects.html", {"page": page, "rows": rows})
