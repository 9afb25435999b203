"""Audit API routes under /api/v1/."""

from django.urls import URLPattern, URLResolver, path

from provenance.api import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("audit/events/", views.AuditEventListApi.as_view(), name="api-audit-events"),
    path("audit/verify/", views.AuditChainVerifyApi.as_view(), name="api-audit-verify"),
]
