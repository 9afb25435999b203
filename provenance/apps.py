from django.apps import AppConfig


class ProvenanceConfig(AppConfig):
    name = "provenance"
    verbose_name = "Provenance, consent and audit"

    def ready(self) -> None:
        # Imported here: the receivers reach models, which the app registry loads first.
        from core import signals
        from provenance import receivers

        signals.user_created.connect(
            receivers.user_created_audit, dispatch_uid="provenance.user_created_audit"
        )
        signals.user_role_changed.connect(
            receivers.user_role_changed_audit, dispatch_uid="provenance.user_role_changed_audit"
        )
        signals.user_password_changed.connect(
            receivers.user_password_changed_audit,
            dispatch_uid="provenance.user_password_changed_audit",
        )
        signals.model_changed.connect(
            receivers.model_changed_audit, dispatch_uid="provenance.model_changed_audit"
        )
