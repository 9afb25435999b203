"""Page routes. Names are global (no namespace) so ``LOGIN_REDIRECT_URL = "home"`` resolves."""

from django.urls import URLPattern, URLResolver, path

from annotation import governance_views, quality_views, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.home, name="home"),
    # Annotators
    path("annotate/", views.annotator_home, name="annotator-home"),
    path("annotate/<int:project_id>/consent/", views.consent, name="annotate-consent"),
    path("annotate/<int:project_id>/survey/", views.survey, name="annotate-survey"),
    path("annotate/<int:project_id>/label/", views.label, name="annotate-label"),
    path("annotate/<int:project_id>/skip/", views.skip, name="annotate-skip"),
    path("annotate/<int:project_id>/next/", views.label_next, name="annotate-next"),
    path("annotate/<int:project_id>/withdraw/", views.withdraw, name="annotate-withdraw"),
    path("annotate/<int:project_id>/labels/", views.my_labels, name="annotate-my-labels"),
    path("annotate/labels/<int:annotation_id>/edit/", views.label_edit, name="annotate-label-edit"),
    # Researchers (and staff)
    path("research/", views.research_projects, name="research-projects"),
    path("research/projects/new/", views.project_new, name="research-project-new"),
    path("research/projects/<int:project_id>/", views.project_detail, name="research-project"),
    path(
        "research/projects/<int:project_id>/edit/",
        views.project_edit,
        name="research-project-edit",
    ),
    path(
        "research/projects/<int:project_id>/status/",
        views.project_status,
        name="research-project-status",
    ),
    path(
        "research/projects/<int:project_id>/import/",
        views.project_import,
        name="research-project-import",
    ),
    path(
        "research/projects/<int:project_id>/import/<int:batch_id>/",
        views.import_batch_detail,
        name="research-import-batch",
    ),
    # Agreement analysis: owners, auditors (read-only) and staff
    path(
        "research/projects/<int:project_id>/analysis/",
        views.analysis_overview,
        name="research-analysis",
    ),
    path(
        "research/projects/<int:project_id>/analysis/items/",
        views.analysis_items,
        name="research-analysis-items",
    ),
    # Recomputing it: a POST by the owner or staff (reading never recomputes)
    path(
        "research/projects/<int:project_id>/analysis/refresh/",
        views.analysis_recompute,
        name="research-analysis-refresh",
    ),
    path(
        "research/projects/<int:project_id>/controls/",
        quality_views.project_controls,
        name="research-project-controls",
    ),
    # Anyone: takedown requests
    path("takedown/", governance_views.takedown_public, name="takedown"),
    # Governance: owners decide, auditors read
    path("governance/takedowns/", governance_views.takedown_list, name="takedown-list"),
    path(
        "governance/takedowns/<int:takedown_id>/",
        governance_views.takedown_detail,
        name="takedown-detail",
    ),
    path(
        "governance/projects/<int:project_id>/licenses/",
        governance_views.project_license_report,
        name="report-licenses",
    ),
    path(
        "governance/projects/<int:project_id>/consent/",
        governance_views.project_consent_report,
        name="report-consent",
    ),
    path(
        "governance/items/<int:item_id>/consent/",
        governance_views.item_subject_consent,
        name="item-subject-consent",
    ),
    # Auditors (and staff): read-only
    path("audit/", views.audit_log, name="audit-log"),
    path("audit/projects/", views.auditor_projects, name="auditor-projects"),
]
