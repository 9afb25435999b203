"""Django admin for staff. Identities of annotators appear as pseudonyms; hashes and the
audit trail are read-only, and every change staff save here is audited with its old and
new values (``core.admin.AuditedChangesAdmin``) or by the service the save goes through."""

from typing import Any, TypeVar, cast

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.forms import ModelForm
from django.http import HttpRequest

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
from annotation.services import PROJECT_EDITABLE_FIELDS, project_update
from core.admin import AuditedChangesAdmin
from core.models import User
from provenance.licenses import parse as license_parse
from provenance.selectors import license_table

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
