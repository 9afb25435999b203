"""Django admin for staff. Identities of annotators appear as pseudonyms; hashes and the
audit trail are read-only, role changes go through the audited service, and every other
change staff save here is audited with its old and new values."""

from typing import Any, ClassVar, TypeVar, cast

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from annotation.consent import MATERIAL_FIELDS
from annotation.models import (
    Annotation,
    Assignment,
    Enrolment,
    ImportBatch,
    Item,
    Project,
    ProjectStatus,
    TakedownRequest,
)
from annotation.services import PROJECT_EDITABLE_FIELDS, project_update, user_role_set
from core.models import User
from provenance.licenses import parse as license_parse
from provenance.selectors import license_table
from provenance.services import audit_record, model_change_audit

M = TypeVar("M", bound=models.Model)


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class AuditedChangesAdmin(admin.ModelAdmin[M]):
    """Audits each change saved through the change form as ``admin.change``: the old and
    new values of the fields that changed, nothing for the ones that did not.

    Recorded after the many-to-many fields are saved, inside the transaction the admin
    holds around the whole save, so a change and its event commit or roll back together.
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
        model_change_audit(
            actor=_actor(request),
            obj=obj,
            # The form's initial values are the row as stored when the request loaded it.
            old={name: form.initial.get(name) for name in names},
            new={name: obj._meta.get_field(name).value_from_object(obj) for name in names},
            redacted=self.audit_redacted,
        )


class NoAddNoDeleteAdmin(admin.ModelAdmin[M]):
    """Rows that only services create (validated, sanitised, audited) and nobody deletes:
    deleting them would break slot counts, consent records or the audit trail."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: M | None = None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(NoAddNoDeleteAdmin[Project]):
    """Projects are created on the research pages; edits here go through ``project_update``
    (validated and audited). Status changes, schema and k are not edited here."""

    list_display = ("title", "modality", "status", "annotations_per_item", "owner_pseudonym")
    list_filter = ("status", "modality")
    search_fields = ("title",)
    list_select_related = ("owner",)
    readonly_fields = (
        "owner_pseudonym",
        "status",
        "modality",
        "label_schema",
        "annotations_per_item",
        "survey",
        "created_at",
        "updated_at",
    )
    exclude = ("owner",)

    @admin.display(description="owner", ordering="owner__pseudonym")
    def owner_pseudonym(self, obj: Project) -> str:
        return obj.owner.pseudonym

    def get_readonly_fields(self, request: HttpRequest, obj: Project | None = None) -> Any:
        """Once a project has opened, the terms annotators consent to change only on the
        project's edit page, which says how many must consent again before saving."""
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.status != ProjectStatus.DRAFT:
            fields += MATERIAL_FIELDS
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        closed = obj is not None and obj.status == ProjectStatus.CLOSED
        return super().has_change_permission(request, obj) and not closed

    def save_model(
        self, request: HttpRequest, obj: Project, form: ModelForm[Any], change: bool
    ) -> None:
        stored = Project.objects.get(pk=obj.pk)
        data = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in PROJECT_EDITABLE_FIELDS
        }
        project_update(project=stored, actor=cast(User, request.user), data=data)


# What staff may correct on an item (audited). Everything else is read-only: contents,
# hashes and files are fixed at import; consent, controls and takedowns change through
# their services (validated and audited there); the external id is the researcher's key
# and the source link is the owner's (a source belongs to the project's owner).
ITEM_ADMIN_EDITABLE_FIELDS = ("metadata", "creator", "license", "attribution")


class ItemAdminForm(ModelForm[Item]):
    def clean_license(self) -> str:
        """A valid SPDX expression, normalised as the import normalises it."""
        expression = str(self.cleaned_data.get("license") or "")
        if not expression:
            return ""
        try:
            return license_parse(expression, table=license_table())
        except ValueError as error:
            raise ValidationError(str(error), code="invalid_license") from error


@admin.register(Item)
class ItemAdmin(AuditedChangesAdmin[Item], NoAddNoDeleteAdmin[Item]):
    """Items arrive through the import (sanitised and hashed); staff correct their license
    and attribution here, audited."""

    list_display = ("external_id", "project", "kind", "license", "slots_taken")
    list_filter = ("kind",)
    search_fields = ("external_id", "sha256")
    list_select_related = ("project",)
    form = ItemAdminForm
    readonly_fields = [
        field.name for field in Item._meta.fields if field.name not in ITEM_ADMIN_EDITABLE_FIELDS
    ]


@admin.register(TakedownRequest)
class TakedownRequestAdmin(NoAddNoDeleteAdmin[TakedownRequest]):
    """Decided on the takedown page (which tombstones and audits), not here."""

    list_display = ("id", "kind", "project", "item", "status", "created_at", "decided_at")
    list_filter = ("status", "kind")
    list_select_related = ("project", "item")
    readonly_fields = [f.name for f in TakedownRequest._meta.fields]


@admin.register(ImportBatch)
class ImportBatchAdmin(NoAddNoDeleteAdmin[ImportBatch]):
    list_display = ("id", "project", "original_name", "status", "item_count", "created_at")
    list_filter = ("status",)
    list_select_related = ("project",)
    readonly_fields = [f.name for f in ImportBatch._meta.fields]


class AnnotatorPseudonymColumn:
    """A list column showing the annotator by pseudonym, the only identity staff lists show."""

    @admin.display(description="annotator", ordering="annotator__pseudonym")
    def annotator_pseudonym(self, obj: Enrolment | Assignment | Annotation) -> str:
        return obj.annotator.pseudonym


@admin.register(Enrolment)
class EnrolmentAdmin(AnnotatorPseudonymColumn, NoAddNoDeleteAdmin[Enrolment]):
    list_display = ("id", "project", "annotator_pseudonym", "created_at", "withdrawn_at")
    list_filter = ("withdrawn_at",)
    list_select_related = ("project", "annotator")
    # Consent and withdrawal are recorded by the services only.
    readonly_fields = [f.name for f in Enrolment._meta.fields]


@admin.register(Assignment)
class AssignmentAdmin(AnnotatorPseudonymColumn, NoAddNoDeleteAdmin[Assignment]):
    list_display = ("id", "project", "item", "annotator_pseudonym", "status", "expires_at")
    list_filter = ("status",)
    list_select_related = ("project", "item", "annotator")
    readonly_fields = [f.name for f in Assignment._meta.fields]


@admin.register(Annotation)
class AnnotationAdmin(AnnotatorPseudonymColumn, NoAddNoDeleteAdmin[Annotation]):
    list_display = ("id", "project", "item", "annotator_pseudonym", "value", "withdrawn")
    list_filter = ("withdrawn",)
    list_select_related = ("project", "item", "annotator")
    # Labels belong to their authors: staff read them, only the author edits (audited).
    readonly_fields = [f.name for f in Annotation._meta.fields]


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
            audit_record(actor=actor, action="user.create", obj=obj, payload={"role": obj.role})
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
                    audit_record(
                        actor=_actor(request),
                        action="user.password_change",
                        obj=user,
                        payload={
                            "password_changed": True,
                            "password_usable": user.has_usable_password(),
                        },
                    )
        return response
