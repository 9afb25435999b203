"""Audit events for what ``core`` announces (``core.signals``): ``core`` may not import the
audit log, so it sends signals and these receivers record them, connected in
``ProvenanceConfig.ready()``. Each runs inside the sender's transaction, so the change and
its event commit or roll back together.
"""

from collections.abc import Collection, Mapping
from typing import Any

from django.db import models

from core.models import User
from provenance.services import audit_record, model_change_audit


def user_created_audit(*, user: User, actor: User | None, **kwargs: Any) -> None:
    audit_record(actor=actor, action="user.create", obj=user, payload={"role": user.role})


def user_role_changed_audit(
    *, user: User, actor: User | None, previous: str, role: str, **kwargs: Any
) -> None:
    audit_record(
        actor=actor,
        action="user.role_change",
        obj=user,
        payload={"pseudonym": user.pseudonym, "from": previous, "to": role},
    )


def user_password_changed_audit(*, user: User, actor: User | None, **kwargs: Any) -> None:
    """That the password changed and whether it can still sign in; the hash stays out."""
    audit_record(
        actor=actor,
        action="user.password_change",
        obj=user,
        payload={"password_changed": True, "password_usable": user.has_usable_password()},
    )


def model_changed_audit(
    *,
    obj: models.Model,
    actor: User | None,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    redacted: Collection[str],
    **kwargs: Any,
) -> None:
    model_change_audit(actor=actor, obj=obj, old=old, new=new, redacted=redacted)
