"""REST API routes under /api/v1/ (names prefixed ``api-``; pages own the plain names)."""

from django.urls import URLPattern, URLResolver, path

from annotation.api import (
    analysis,
    annotations,
    assignments,
    enrolment,
    governance,
    items,
    projects,
)
from core.api.auth import AuthTokenApi

urlpatterns: list[URLPattern | URLResolver] = [
    # Governance: takedowns, data subjects' consent, auditor reports
    path("takedowns/", governance.TakedownListCreateApi.as_view(), name="api-takedowns"),
    path(
        "takedowns/<int:takedown_id>/",
        governance.TakedownDetailApi.as_view(),
        name="api-takedown",
    ),
    path(
        "takedowns/<int:takedown_id>/decision/",
        governance.TakedownDecisionApi.as_view(),
        name="api-takedown-decision",
    ),
    path(
        "projects/<int:project_id>/reports/licenses/",
        governance.ProjectLicenseReportApi.as_view(),
        name="api-report-licenses",
    ),
    path(
        "projects/<int:project_id>/reports/consent/",
        governance.ProjectConsentReportApi.as_view(),
        name="api-report-consent",
    ),
    path(
        "items/<int:item_id>/subject-consent/",
        governance.ItemSubjectConsentApi.as_view(),
        name="api-item-subject-consent",
    ),
    path("auth/token/", AuthTokenApi.as_view(), name="api-token"),
    # Projects
    path("projects/", projects.ProjectListCreateApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path(
        "projects/<int:project_id>/transition/",
        projects.ProjectTransitionApi.as_view(),
        name="api-project-transition",
    ),
    path(
        "projects/<int:project_id>/progress/",
        projects.ProjectProgressApi.as_view(),
        name="api-project-progress",
    ),
    path(
        "projects/<int:project_id>/consent/",
        enrolment.ProjectConsentApi.as_view(),
        name="api-project-consent",
    ),
    # Items and imports
    path(
        "projects/<int:project_id>/items/",
        items.ProjectItemListApi.as_view(),
        name="api-project-items",
    ),
    path("items/<int:item_id>/", items.ItemDetailApi.as_view(), name="api-item"),
    path("items/<int:item_id>/image/", items.ItemImageApi.as_view(), name="api-item-image"),
    path("items/<int:item_id>/control/", items.ItemControlApi.as_view(), name="api-item-control"),
    path(
        "projects/<int:project_id>/imports/",
        items.ProjectImportListCreateApi.as_view(),
        name="api-project-imports",
    ),
    path(
        "projects/<int:project_id>/imports/<int:batch_id>/",
        items.ProjectImportDetailApi.as_view(),
        name="api-project-import",
    ),
    # Annotators: enrolment, assignments
    path(
        "projects/<int:project_id>/enrolment/",
        enrolment.EnrolmentApi.as_view(),
        name="api-enrolment",
    ),
    path(
        "projects/<int:project_id>/enrolment/survey/",
        enrolment.EnrolmentSurveyApi.as_view(),
        name="api-enrolment-survey",
    ),
    path(
        "projects/<int:project_id>/enrolment/withdraw/",
        enrolment.EnrolmentWithdrawApi.as_view(),
        name="api-enrolment-withdraw",
    ),
    path(
        "projects/<int:project_id>/next/",
        assignments.AssignmentNextApi.as_view(),
        name="api-assignment-next",
    ),
    path(
        "projects/<int:project_id>/assignments/",
        assignments.AssignmentListApi.as_view(),
        name="api-assignments",
    ),
    path(
        "assignments/<int:assignment_id>/skip/",
        assignments.AssignmentSkipApi.as_view(),
        name="api-assignment-skip",
    ),
    # Annotations
    path("annotations/", annotations.AnnotationCreateApi.as_view(), name="api-annotations"),
    path(
        "annotations/<int:annotation_id>/",
        annotations.AnnotationDetailApi.as_view(),
        name="api-annotation",
    ),
    path(
        "projects/<int:project_id>/annotations/",
        annotations.ProjectAnnotationListApi.as_view(),
        name="api-project-annotations",
    ),
    # Agreement analysis (owner, auditors, staff)
    path(
        "projects/<int:project_id>/agreement/",
        analysis.ProjectAgreementApi.as_view(),
        name="api-project-agreement",
    ),
    # Reading never recomputes: this POST does (owner and staff)
    path(
        "projects/<int:project_id>/agreement/refresh/",
        analysis.ProjectAgreementRefreshApi.as_view(),
        name="api-project-agreement-refresh",
    ),
    path(
        "projects/<int:project_id>/items/disagreement/",
        analysis.ProjectItemDisagreementListApi.as_view(),
        name="api-project-items-disagreement",
    ),
    path(
        "projects/<int:project_id>/annotators/agreement/",
        analysis.ProjectAnnotatorAgreementApi.as_view(),
        name="api-project-annotators-agreement",
    ),
    path(
        "projects/<int:project_id>/groups/<str:question>/",
        analysis.ProjectGroupDisagreementApi.as_view(),
        name="api-project-group-disagreement",
    ),
]
