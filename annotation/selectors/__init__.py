"""Reads for the annotation campaign. Visibility is decided here, for lists and details.

Researchers see their own projects; auditors and staff see all projects read-only;
annotators see open projects (and ones they joined), their own assignments and labels,
never anyone else's.

One module per entity (projects, items, annotations, assignment, controls, governance);
this package re-exports their public names, and callers import from here.
"""

from annotation.selectors.annotations import (
    annotation_get_own,
    annotation_list_for,
    annotations_for_analysis,
)
from annotation.selectors.assignment import (
    AnnotatorProgress,
    AnnotatorProjectRow,
    AssignmentWaitHint,
    annotator_progress,
    annotator_progress_for,
    annotator_project_rows,
    assignment_current,
    assignment_get_own,
    assignment_list_own,
    assignment_wait_hint,
    enrolment_get,
)
from annotation.selectors.controls import ControlAccuracy, control_accuracy, control_item_list
from annotation.selectors.governance import (
    FINDINGS_LIMIT,
    LICENSE_CSV_HEADER,
    AnnotatorConsentRow,
    ConsentReport,
    LicensedItem,
    LicenseReport,
    UseAnswer,
    consent_report,
    license_report,
    license_report_rows,
    takedown_get_for,
    takedown_list_for,
)
from annotation.selectors.items import (
    ITEM_ORDERING_FIELDS,
    import_batch_list,
    item_get_by_external_id,
    item_get_for,
    item_list,
)
from annotation.selectors.projects import (
    ProjectProgress,
    enrolment_active_count,
    project_get_for,
    project_list_for,
    project_managed_by,
    project_progress,
    project_progress_for,
    project_readable_by_staff_role,
)

__all__ = [
    "FINDINGS_LIMIT",
    "ITEM_ORDERING_FIELDS",
    "LICENSE_CSV_HEADER",
    "AnnotatorConsentRow",
    "AnnotatorProgress",
    "AnnotatorProjectRow",
    "AssignmentWaitHint",
    "ConsentReport",
    "ControlAccuracy",
    "LicenseReport",
    "LicensedItem",
    "ProjectProgress",
    "UseAnswer",
    "annotation_get_own",
    "annotation_list_for",
    "annotations_for_analysis",
    "annotator_progress",
    "annotator_progress_for",
    "annotator_project_rows",
    "assignment_current",
    "assignment_get_own",
    "assignment_list_own",
    "assignment_wait_hint",
    "consent_report",
    "control_accuracy",
    "control_item_list",
    "enrolment_active_count",
    "enrolment_get",
    "import_batch_list",
    "item_get_by_external_id",
    "item_get_for",
    "item_list",
    "license_report",
    "license_report_rows",
    "project_get_for",
    "project_list_for",
    "project_managed_by",
    "project_progress",
    "project_progress_for",
    "project_readable_by_staff_role",
    "takedown_get_for",
    "takedown_list_for",
]
