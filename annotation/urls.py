"""Page routes. Names are global (no namespace): templates and redirects name them alone."""

from django.urls import URLPattern, URLResolver, path

from annotation.views import analysis, annotator, auditor, governance, quality, research

urlpatterns: list[URLPattern | URLResolver] = [
    # Annotators
    path("annotate/", annotator.annotator_home, name="annotator-home"),
    path("annotate/<int:project_id>/consent/", annotator.consent, name="annotate-consent"),
    path("annotate/<int:project_id>/survey/", annotator.survey, name="annotate-survey"),
    path("annotate/<int:project_id>/label/", annotator.label, name="annotate-label"),
    path("annotate/<int:project_id>/skip/", annotator.skip, name="annotate-skip"),
    path("annotate/<int:project_id>/next/", annotator.label_next, name="annotate-next"),
    path("annotate/<int:project_id>/withdraw/", annotator.withdraw, name="annotate-withdraw"),
    path("annotate/<int:project_id>/labels/", annotator.my_labels, name="annotate-my-labels"),
    path(
        "annotate/labels/<int:annotation_id>/edit/",
        annotator.label_edit,
        name="annotate-label-edit",
    ),
    # Researchers (and staff)
    path("research/", research.research_projects, name="research-projects"),
    path("research/projects/new/", research.project_new, name="research-project-new"),
    path("research/projects/<int:project_id>/", research.project_detail, name="research-project"),
    path(
        "research/projects/<int:project_id>/edit/",
        research.project_edit,
        name="research-project-edit",
    ),
    path(
        "research/projects/<int:project_id>/status/",
        research.project_status,
        name="research-project-status",
    ),
    path(
        "research/projects/<int:project_id>/import/",
        research.project_import,
        name="research-project-import",
    ),
    path(
        "research/projects/<int:project_id>/import/<int:batch_id>/",
        research.import_batch_detail,
        name="research-import-batch",
    ),
    # Agreement analysis: owners, auditors (read-only) and staff
    path(
        "research/projects/<int:project_id>/analysis/",
        analysis.analysis_overview,
        name="research-analysis",
    ),
    path(
        "research/projects/<int:project_id>/analysis/items/",
        analysis.analysis_items,
        name="research-analysis-items",
    ),
    # Recomputing it: a POST by the owner or staff (reading never recomputes)
    path(
        "research/projects/<int:project_id>/analysis/refresh/",
        analysis.analysis_recompute,
        name="research-analysis-refresh",
    ),
    path(
        "research/projects/<int:project_id>/controls/",
        quality.project_controls,
        name="research-project-controls",
    ),
    # Anyone: takedown requests
    path("takedown/", governance.takedown_public, name="takedown"),
    # Governance: owners decide, auditors read
    path("governance/takedowns/", governance.takedown_list, name="takedown-list"),
    path(
        "governance/takedowns/<int:takedown_id>/",
        governance.takedown_detail,
        name="takedown-detail",
    ),
    path(
        "governance/projects/<int:project_id>/licenses/",
        governance.project_license_report,
        name="report-licenses",
    ),
    path(
        "governance/projects/<int:project_id>/consent/",
        governance.project_consent_report,
        name="report-consent",
    ),
    path(
        "governance/items/<int:item_id>/consent/",
        governance.item_subject_consent,
        name="item-subject-consent",
    ),
    # Auditors (and staff): read-only
    path("audit/projects/", auditor.auditor_projects, name="auditor-projects"),
]
