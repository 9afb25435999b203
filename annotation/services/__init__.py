"""Writes for the annotation campaign: projects, enrolment, assignment, annotations.

Every governance action (project state change, consent, withdrawal, import, label
submission) appends to the tamper-evident audit log in the same transaction.

One module per entity (projects, enrolment, assignment, annotations, controls, takedowns;
accounts are ``core.services``); this package re-exports their public names, and callers
import from here. A test that patches a module-level setting patches the defining module
(for instance ``annotation.services.assignment.CONTESTED_CANDIDATES``): the functions read
their own module's name, never this re-export.
"""

from annotation.consent import project_consent_text
from annotation.services.annotations import SubmitResult, annotation_submit, annotation_update
from annotation.services.assignment import assignment_next, assignment_skip, assignments_expire
from annotation.services.controls import item_control_set
from annotation.services.enrolment import (
    CONSENT_PURPOSES,
    enrolment_create,
    enrolment_survey_submit,
    enrolment_withdraw,
)
from annotation.services.projects import (
    ALLOWED_TRANSITIONS,
    PROJECT_EDITABLE_FIELDS,
    PROJECT_FROZEN_AFTER_DRAFT,
    project_create,
    project_schema,
    project_transition,
    project_update,
)
from annotation.services.takedowns import (
    item_subject_consent_set,
    takedown_decide,
    takedown_file,
    takedown_throttle,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CONSENT_PURPOSES",
    "PROJECT_EDITABLE_FIELDS",
    "PROJECT_FROZEN_AFTER_DRAFT",
    "SubmitResult",
    "annotation_submit",
    "annotation_update",
    "assignment_next",
    "assignment_skip",
    "assignments_expire",
    "enrolment_create",
    "enrolment_survey_submit",
    "enrolment_withdraw",
    "item_control_set",
    "item_subject_consent_set",
    "project_consent_text",
    "project_create",
    "project_schema",
    "project_transition",
    "project_update",
    "takedown_decide",
    "takedown_file",
    "takedown_throttle",
]
