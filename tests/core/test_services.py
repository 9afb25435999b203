"""Account services: creating users and changing roles, audited through ``core.signals``."""

import pytest
from rest_framework.authtoken.models import Token

from core.errors import ValidationFailed
from core.models import Role, User
from core.services import api_token_issue, user_create, user_role_set
from provenance import receivers
from provenance.models import AuditEvent
from provenance.services import audit_chain_verify
from tests.core.factories import make_user

pytestmark = pytest.mark.django_db


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def test_user_create_audited_with_role() -> None:
    user = user_create(username="newbie", password="a-long-enough-pw", role=Role.AUDITOR)
    (event,) = events("user.create")
    assert event.object_id == str(user.pk)
    assert event.payload == {"role": "auditor"}


def test_user_create_unknown_role_rejected() -> None:
    with pytest.raises(ValidationFailed) as caught:
        user_create(username="newbie", password="a-long-enough-pw", role="admin")
    assert caught.value.code == "invalid_role"
    assert not User.objects.filter(username="newbie").exists()


def test_user_role_set_change_audited() -> None:
    admin = make_user(Role.RESEARCHER, is_staff=True)
    user = make_user(Role.ANNOTATOR)
    user_role_set(user=user, role=Role.RESEARCHER, actor=admin)
    user.refresh_from_db()
    assert user.role == Role.RESEARCHER
    (event,) = events("user.role_change")
    assert event.actor_id == admin.pk
    assert event.payload == {"pseudonym": user.pseudonym, "from": "annotator", "to": "researcher"}
    assert audit_chain_verify().ok


def test_user_role_set_same_role_writes_nothing() -> None:
    user = make_user(Role.ANNOTATOR)
    user_role_set(user=user, role=Role.ANNOTATOR, actor=None)
    assert events("user.role_change") == []


def test_user_role_set_unknown_role_rejected_and_unchanged() -> None:
    user = make_user(Role.ANNOTATOR)
    with pytest.raises(ValidationFailed):
        user_role_set(user=user, role="superuser", actor=None)
    user.refresh_from_db()
    assert user.role == Role.ANNOTATOR
    assert events("user.role_change") == []


def test_user_role_set_audit_failure_rolls_back_role_and_token_revocation(monkeypatch) -> None:
    """The audit receiver runs inside the role change's transaction: no event, no change."""
    user = make_user(Role.ANNOTATOR)
    token = api_token_issue(user=user)

    def refuse(**kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(receivers, "audit_record", refuse)
    with pytest.raises(RuntimeError):
        user_role_set(user=user, role=Role.RESEARCHER, actor=None)

    assert User.objects.get(pk=user.pk).role == Role.ANNOTATOR
    assert Token.objects.filter(key=token.key).exists()
    assert events("user.role_change") == []
