"""Staff edits through the Django admin: every governance-relevant change is audited with its
old and new values, nothing unchanged is logged, and what only services may change is
read-only."""

import pytest
from django.test import Client
from django.urls import reverse

from annotation.models import Item
from core.models import Role
from provenance.models import AuditEvent
from provenance.services import audit_chain_verify
from tests.admin_forms import admin_changes, admin_form_data
from tests.annotation.factories import make_open_project
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(make_user(Role.RESEARCHER, is_staff=True, is_superuser=True))
    return client


# ---------------------------------------------------------------- items


def test_item_admin_license_and_creator_change_audited_with_old_and_new_values(staff_client):
    item = make_open_project(1).items.get()
    url = reverse("admin:annotation_item_change", args=[item.pk])
    data = admin_form_data(staff_client, url, license="cc-by-sa-4.0", creator="Ana")

    response = staff_client.post(url, data)

    assert response.status_code == 302
    item.refresh_from_db()
    assert item.license == "CC-BY-SA-4.0" and item.creator == "Ana"
    (event,) = admin_changes(item)
    assert event.payload == {
        "fields": {
            "license": {"old": "CC-BY-4.0", "new": "CC-BY-SA-4.0"},
            "creator": {"old": "", "new": "Ana"},
        }
    }
    assert audit_chain_verify().ok


def test_item_admin_license_respelled_to_same_expression_logs_nothing(staff_client):
    item = make_open_project(1).items.get()
    url = reverse("admin:annotation_item_change", args=[item.pk])

    response = staff_client.post(url, admin_form_data(staff_client, url, license="cc-by-4.0"))

    assert response.status_code == 302
    assert Item.objects.get(pk=item.pk).license == "CC-BY-4.0"
    assert admin_changes(item) == []


def test_item_admin_invalid_license_is_a_form_error_and_nothing_changes(staff_client):
    item = make_open_project(1).items.get()
    url = reverse("admin:annotation_item_change", args=[item.pk])
    events_before = AuditEvent.objects.count()

    response = staff_client.post(url, admin_form_data(staff_client, url, license="MIT AND"))

    assert response.status_code == 200
    assert "license" in response.context["adminform"].form.errors
    assert Item.objects.get(pk=item.pk).license == "CC-BY-4.0"
    assert AuditEvent.objects.count() == events_before


def test_item_admin_provenance_links_and_hashes_are_read_only(staff_client):
    item = make_open_project(1).items.get()
    url = reverse("admin:annotation_item_change", args=[item.pk])

    form = staff_client.get(url).context["adminform"].form

    assert set(form.fields) == {"metadata", "creator", "license", "attribution"}


# ---------------------------------------------------------------- projects


def test_project_admin_open_project_terms_read_only_title_audited_with_values(staff_client):
    """The consented terms change on the project page, which asks for re-consent first."""
    project = make_open_project(1, compensation_amount="12.00")
    url = reverse("admin:annotation_project_change", args=[project.pk])
    data = admin_form_data(staff_client, url, title="Renamed")
    data["compensation_amount"] = "1.00"  # not a field of this form: ignored

    response = staff_client.post(url, data)

    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.title, str(project.compensation_amount)) == ("Renamed", "12.00")
    event = AuditEvent.objects.filter(action="project.update").latest("seq")
    assert set(event.payload["fields"]) == {"title"}
    assert event.payload["fields"]["title"]["new"] == "Renamed"
