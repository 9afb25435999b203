"""Schemathesis over the OpenAPI schema, in process: no input makes the API answer 5xx.

Every operation gets a bounded number of generated requests (valid and invalid), sent by
an anonymous caller, a researcher who owns a project, and an enrolled annotator. Path ids
point at that caller's real objects so requests reach the services, not just the 404s.
Checks: no 5xx, documented status codes and content types, responses match their
schemas, and authentication is never ignored.
"""

from typing import Any

import hypothesis
import pytest
import schemathesis
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)

from annotation.services import annotation_submit, assignment_next
from tests.annotation.factories import (
    add_text_items,
    make_enrolled_annotator,
    make_open_project,
    make_project,
)

MAX_EXAMPLES = 15
IDENTITIES = ("anonymous", "researcher", "annotator")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    ignored_auth,
]


@pytest.fixture(params=IDENTITIES)
def identity(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fuzz_target(identity: str) -> dict[str, Any]:
    """Real objects for the caller: headers to send and path ids to aim at."""
    project = make_open_project(6, k=2)
    draft = make_project(owner=project.owner)
    add_text_items(draft, 2, start=100)
    annotator = make_enrolled_annotator(project)
    assignment = assignment_next(project=project, annotator=annotator)
    assert assignment is not None
    annotation = annotation_submit(
        annotator=annotator, item=assignment.item, value="neither"
    ).annotation
    open_assignment = assignment_next(project=project, annotator=annotator)
    assert open_assignment is not None
    if identity == "anonymous":
        return {"headers": {}, "path_ids": {}}
    user = project.owner if identity == "researcher" else annotator
    token, _ = Token.objects.get_or_create(user=user)
    path_ids = {
        "project_id": project.pk if identity == "annotator" else draft.pk,
        "item_id": open_assignment.item_id,
        "assignment_id": open_assignment.pk,
        "annotation_id": annotation.pk,
    }
    return {"headers": {"Authorization": f"Token {token.key}"}, "path_ids": path_ids}


def _load_schema() -> Any:
    # Loaded at collection, in process: the schema view needs no database.
    from config.wsgi import application

    loaded = schemathesis.openapi.from_wsgi("/api/schema/", application)
    loaded.config.generation.update(
        max_examples=MAX_EXAMPLES, deterministic=True, database="none", no_shrink=True
    )
    return loaded


schema = _load_schema()


# About 35 s for 27 operations x 3 identities on SQLite.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # The fixture's rows are meant to be shared by every generated request of a test.
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
)
def test_api_fuzz_any_identity_no_server_error_and_conforms(
    case: Any, fuzz_target: dict[str, Any]
) -> None:
    if fuzz_target["headers"]:
        # Signed-in runs send only the caller's real token, no generated credentials.
        if case.cookies:
            case.cookies.pop("sessionid", None)
        if case.headers:
            case.headers.pop("Authorization", None)
    for name, value in fuzz_target["path_ids"].items():
        if name in (case.path_parameters or {}):
            case.path_parameters[name] = value
    case.call_and_validate(headers=fuzz_target["headers"], checks=CHECKS)
