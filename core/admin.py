"""Django admin for accounts, and the audited-changes mixin every app's admin uses.

Changes of rights are audited with their old and new values, identity fields and
passwords as changed only, and role changes go through ``user_role_set``. ``core`` may not
import the audit log: the admin announces each change with a ``core.signals`` signal,
inside the transaction the admin holds around the save, and ``provenance`` records it.
"""

from typing import Any, ClassVar, TypeVar

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.db import models, transaction
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from core.models import User
from core.services import user_role_set
from core.signals import model_changed, user_created, user_password_changed

M = TypeVar("M", bound=models.Model)


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class AuditedChangesAdmin(admin.ModelAdmin[M]):
    """Audits each change saved through the change form as ``admin.change``: the old and
    new values of the fields that changed, nothing for the ones that did not.

    Announced (``model_changed``) after the many-to-many fields are saved, inside the
    transaction the admin holds around the whole save, so a change and its event commit or
    roll back together.
    """

    # Personal data, logged as changed without its values: the log is append-only and
    # auditors read it, and they see people by pseudonym only.
    audit_redacted: ClassVar[frozenset[str]] = frozenset()
    # Audited by the service the save goes through instead.
    audit_excluded: ClassVar[frozenset[str]] = frozenset()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        super().save_related(request, form, formsets, change)
        if not change:
            return
        obj = form.instance
        names = [name for name in form.changed_data if name not in self.audit_excluded]
        model_changed.send(
            sender=type(obj),
            obj=obj,
            actor=_actor(request),
            # The form's initial values are the row as stored when the request loaded it.
            old={name: form.initial.get(name) for name in names},
            new={name: obj._meta.get_field(name).value_from_object(obj) for name in names},
            redacted=self.audit_redacted,
        )


@admin.register(User)
class ChorusUserAdmin(AuditedChangesAdmin[User], UserAdmin[User]):
    """Changes of rights (staff, superuser, active, groups, permissions) are audited with
    old and new values, of identity fields as changed only; passwords as changed only."""

    audit_redacted = frozenset({"username", "email", "first_name", "last_name"})
    # ``save_model`` routes it through ``user_role_set``, which audits it.
    audit_excluded = frozenset({"role"})
    list_display = ("username", "pseudonym", "role", "is_staff", "is_active")
    list_filter = ("role", "is_staff", "is_active")
    search_fields = ("username", "pseudonym", "email")
    readonly_fields = ("pseudonym", "last_login", "date_joined")
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        ("Chorus", {"fields": ("role", "pseudonym")}),
    )
    add_fieldsets = (
        *(UserAdmin.add_fieldsets or ()),
        ("Chorus", {"fields": ("role",)}),
    )

    def save_model(
        self, request: HttpRequest, obj: User, form: ModelForm[Any], change: bool
    ) -> None:
        """Save the user; a role change goes through ``user_role_set`` so it is audited."""
        actor = _actor(request)
        if not change:
            super().save_model(request, obj, form, change)
            user_created.send(sender=User, user=obj, actor=actor)
            return
        new_role = obj.role
        if "role" in form.changed_data:
            obj.role = User.objects.values_list("role", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        user_role_set(user=obj, role=new_role, actor=actor)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """Django's password form, audited as ``user.password_change`` when it saved one.

        The event says that the password changed and whether it can still be used to sign
        in; the hash stays out of the log.
        """
        with transaction.atomic():
            user = self.get_object(request, unquote(id))
            before = user.password if user is not None else None
            response = super().user_change_password(request, id, form_url)
            if user is not None:
                user.refresh_from_db(fields=["password"])
                if user.password != before:
                    user_password_changed.send(sender=User, user=user, actor=_actor(request))
        return response
