from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from core.models import User
from provenance.licenses import is_valid
from provenance.models import AuditEvent, ConsentRecord, LicenseCatalogEntry, Source, Tombstone
from provenance.services import LICENSE_ENTRY_FIELDS, license_entry_save, model_change_audit


def _actor(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin[Source]):
    """Staff correct a source's details here, audited with old and new values.

    Sources are created by imports, scoped to the project's owner, and items protect them:
    nothing is added or deleted here. The owner and the name, which imports match on, are
    read-only, so no item ends up linked to another researcher's source.
    """

    list_display = ("name", "owner_pseudonym", "url", "creator")
    search_fields = ("name",)
    list_select_related = ("owner",)
    readonly_fields = ("owner_pseudonym", "name", "created_at", "updated_at")
    exclude = ("owner",)

    @admin.display(description="owner", ordering="owner__pseudonym")
    def owner_pseudonym(self, obj: Source) -> str:
        return obj.owner.pseudonym if obj.owner is not None else "(none: predates owners)"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Source | None = None) -> bool:
        return False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: Any) -> None:
        # Inside the admin's transaction around the save: the change and its event commit
        # together. The form's initial values are the row as stored when the request loaded it.
        super().save_related(request, form, formsets, change)
        source = form.instance
        model_change_audit(
            actor=_actor(request),
            obj=source,
            old={name: form.initial.get(name) for name in form.changed_data},
            new={name: getattr(source, name) for name in form.changed_data},
        )


@admin.register(ConsentRecord)
class ConsentRecordAdmin(admin.ModelAdmin[ConsentRecord]):
    list_display = ("id", "subject_kind", "scope", "text_version", "given_at", "withdrawn_at")
    list_filter = ("subject_kind",)
    readonly_fields = [f.name for f in ConsentRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ConsentRecord | None = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit log is append-only, even for staff."""

    list_display = ("seq", "created_at", "actor_pseudonym", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


class LicenseCatalogEntryForm(forms.ModelForm[LicenseCatalogEntry]):
    class Meta:
        model = LicenseCatalogEntry
        fields = ("spdx_id", *LICENSE_ENTRY_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        spdx_id = str(data.get("spdx_id") or "")
        if spdx_id.startswith("LicenseRef-") and not data.get("terms_url"):
            raise ValidationError("A custom LicenseRef- license needs the URL of its terms.")
        if spdx_id and not spdx_id.startswith("LicenseRef-") and not is_valid(spdx_id):
            raise ValidationError(f"{spdx_id!r} is not an SPDX license id.")
        return data


@admin.register(LicenseCatalogEntry)
class LicenseCatalogEntryAdmin(admin.ModelAdmin[LicenseCatalogEntry]):
    """Staff edit the license classes; the rules in ``provenance.licenses`` run on them."""

    list_display = ("spdx_id", "name", "use", "attribution", "share_alike", "no_derivatives")
    list_filter = ("use", "attribution", "share_alike", "no_derivatives")
    search_fields = ("spdx_id", "name")

    form = LicenseCatalogEntryForm

    def save_model(
        self, request: HttpRequest, obj: LicenseCatalogEntry, form: Any, change: bool
    ) -> None:
        license_entry_save(entry=obj, actor=_actor(request))

    def has_delete_permission(
        self, request: HttpRequest, obj: LicenseCatalogEntry | None = None
    ) -> bool:
        # Items may carry the license; a class is corrected, never removed.
        return False


@admin.register(Tombstone)
class TombstoneAdmin(admin.ModelAdmin[Tombstone]):
    """Read-only: a tombstone is what keeps taken-down content from coming back."""

    list_display = ("sha256", "object_type", "object_id", "created_at")
    readonly_fields = [f.name for f in Tombstone._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Tombstone | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Tombstone | None = None) -> bool:
        return False
