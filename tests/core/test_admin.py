"""Staff edits of accounts through the Django admin: changes of rights are audited with
their old and new values, identity fields and passwords as changed only, role changes once,
by the role service."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.models import Role, User
from provenance.models import AuditEvent
from tests.admin_forms import admin_changes, admin_form_data
from tests.core.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-long-enough-passphrase"  # noqa: S105 - test fixture


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(make_user(Role.RESEARCHER, is_staff=True, is_superuser=True))
    return client


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


def test_user_admin_add_audited_with_role(staff_client):
    url = reverse("admin:core_user_add")
    data = {
        "username": "added-by-staff",
        "password1": NEW_PASSWORD,
        "password2": NEW_PASSWORD,
        "usable_password": "true",
        "role": Role.AUDITOR,
    }

    response = staff_client.post(url, data)

    assert response.status_code == 302
    added = User.objects.get(username="added-by-staff")
    (event,) = AuditEvent.objects.filter(action="user.create", object_id=str(added.pk))
    assert event.payload == {"role": "auditor"}
    assert event.actor_id is not None
