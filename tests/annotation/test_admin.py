"""Staff edits through the Django admin: every governance-relevant change is audited with its
old and new values, nothing unchanged is logged, and what only services may change is
read-only."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from annotation.models import Item
from core.models import Role, User
from provenance.models import AuditEvent
from provenance.services import audit_chain_verify
from tests.admin_forms import admin_form_data
from tests.factories import PASSWORD, make_open_project, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-long-enough-passphrase"  # noqa: S105 - test fixture


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(make_user(Role.RESEARCHER, is_staff=True, is_superuser=True))
    return client


def admin_changes(obj: Item | User) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="admin.change", object_type=obj._meta.label_lower, object_id=str(obj.pk)
        )
    )


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


# ---------------------------------------------------------------- users


def test_user_admin_staff_superuser_and_group_grant_audited_with_old_and_new_values(
    staff_client,
):
    target = make_user(Role.ANNOTATOR)
    group = Group.objects.create(name="moderators")
    url = reverse("admin:core_user_change", args=[target.pk])
    data = admin_form_data(
        staff_client, url, is_staff=True, is_superuser=True, groups=[str(group.pk)]
    )

    response = staff_client.post(url, data)

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.is_staff and target.is_superuser
    (event,) = admin_changes(target)
    assert event.payload == {
        "fields": {
            "is_staff": {"old": False, "new": True},
            "is_superuser": {"old": False, "new": True},
            "groups": {"old": [], "new": [group.pk]},
        }
    }


def test_user_admin_deactivation_audited_and_unchanged_save_logs_nothing(staff_client):
    target = make_user(Role.ANNOTATOR)
    url = reverse("admin:core_user_change", args=[target.pk])

    staff_client.post(url, admin_form_data(staff_client, url))
    assert admin_changes(target) == []
    staff_client.post(url, admin_form_data(staff_client, url, is_active=False))

    (event,) = admin_changes(target)
    assert event.payload == {"fields": {"is_active": {"old": True, "new": False}}}


def test_user_admin_username_and_email_change_audited_without_the_values(staff_client):
    target = make_user(Role.ANNOTATOR)
    old_email = target.email
    url = reverse("admin:core_user_change", args=[target.pk])
    data = admin_form_data(staff_client, url, username="renamed", email="new@example.org")

    response = staff_client.post(url, data)

    assert response.status_code == 302
    (event,) = admin_changes(target)
    assert event.payload == {
        "fields": {"username": {"redacted": True}, "email": {"redacted": True}}
    }
    assert old_email not in str(event.payload) and "new@example.org" not in str(event.payload)


def test_user_admin_role_change_audited_once_by_the_role_service(staff_client):
    target = make_user(Role.ANNOTATOR)
    url = reverse("admin:core_user_change", args=[target.pk])

    staff_client.post(url, admin_form_data(staff_client, url, role=Role.AUDITOR))

    target.refresh_from_db()
    assert target.role == Role.AUDITOR
    (event,) = AuditEvent.objects.filter(action="user.role_change", object_id=str(target.pk))
    assert event.payload["from"] == Role.ANNOTATOR and event.payload["to"] == Role.AUDITOR
    assert admin_changes(target) == []


def test_user_admin_password_change_audited_as_a_flag_without_the_hash(staff_client):
    target = make_user(Role.ANNOTATOR)
    old_hash = target.password
    url = reverse("admin:auth_user_password_change", args=[target.pk])

    assert staff_client.get(url).status_code == 200
    assert not AuditEvent.objects.filter(action="user.password_change").exists()
    response = staff_client.post(
        url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"}
    )

    assert response.status_code == 302
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD) and not target.check_password(PASSWORD)
    (event,) = AuditEvent.objects.filter(action="user.password_change", object_id=str(target.pk))
    assert event.payload == {"password_changed": True, "password_usable": True}
    assert old_hash not in str(event.payload) and target.password not in str(event.payload)


def test_user_admin_password_mismatch_changes_nothing_and_logs_nothing(staff_client):
    target = make_user(Role.ANNOTATOR)
    url = reverse("admin:auth_user_password_change", args=[target.pk])

    response = staff_client.post(
        url, {"password1": NEW_PASSWORD, "password2": "something-else", "usable_password": "true"}
    )

    assert response.status_code == 200
    target.refresh_from_db()
    assert target.check_password(PASSWORD)
    assert not AuditEvent.objects.filter(action="user.password_change").exists()


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
