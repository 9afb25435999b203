"""Page routes. Names are global (no namespace), like every app's pages."""

from django.urls import URLPattern, URLResolver, path

from provenance import views

urlpatterns: list[URLPattern | URLResolver] = [
    # Auditors (and staff): read-only
    path("audit/", views.audit_log, name="audit-log"),
]
