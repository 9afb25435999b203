"""Django admin for staff. Identities of annotators appear as pseudonyms; hashes and the
audit trail are read-only, and role changes go through the audited service."""

from typing import Any, TypeVar, cast

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.forms import ModelForm
from django.http import HttpRequest

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
from provenance.services import audit_record

M = TypeVar("M", bound=models.Model)


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


@admin.register(Item)
class ItemAdmin(NoAddNoDeleteAdmin[Item]):
    """Items arrive through the import (sanitised and hashed); hashes and files are fixed."""

    list_display = ("external_id", "project", "kind", "license", "slots_taken")
    list_filter = ("kind",)
    search_fields = ("external_id", "sha256")
    list_select_related = ("project",)
    readonly_fields = (
        "project",
        "kind",
        "text",
        "sha256",
        "phash",
        "image",
        "image_width",
        "image_height",
        "removed_metadata",
        "slots_taken",
        "shuffle_key",
        "import_batch",
        "created_at",
        # Changed through services only: they are validated and audited there.
        "subject_consent",
        "subject_consent_record",
        "control",
        "expected_value",
        "label_entropy",
        "tombstoned_at",
    )


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
class ChorusUserAdmin(UserAdmin[User]):
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
        actor = request.user if isinstance(request.user, User) else None
        if not change:
            super().save_model(request, obj, form, change)
            audit_record(actor=actor, action="user.create", obj=obj, payload={"role": obj.role})
            return
        new_role = obj.role
        if "role" in form.changed_data:
            obj.role = User.objects.values_list("role", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        user_role_set(user=obj, role=new_role, actor=actor)
