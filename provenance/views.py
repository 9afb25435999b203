"""The audit log page: auditors (and staff) read the log and the hash chain's check.

A read: the chain check never moves the checkpoint (the schedule and
``manage.py verify_audit_chain`` do).
"""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.pages import PAGE_SIZE, auditor_required
from provenance.forms import AuditFilterForm
from provenance.selectors import audit_action_list, audit_chain_checkpoint, audit_event_list
from provenance.services import audit_chain_verify


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
    return render(request, "provenance/audit_log.html", context)
