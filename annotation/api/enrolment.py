"""An annotator's enrolment: the consent text, consenting (again, after the terms changed),
the optional survey, and withdrawal."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import selectors, services
from annotation.api.serializers import ConsentChangeSerializer, EnrolmentSerializer, SafeJSONField
from annotation.consent import consent_changes, enrolment_needs_reconsent, project_consent_text
from annotation.models import Enrolment, Project
from core.api.base import READ_ERRORS, WRITE_ERRORS, BaseApi
from core.api.exceptions import error_responses
from core.api.permissions import DenyAuditorWrites, IsAnnotator, request_user
from core.errors import NotFound
from core.models import User
from provenance.services import consent_text_version


def _enrolment_data(enrolment: Enrolment) -> Any:
    progress = selectors.annotator_progress(
        project=enrolment.project, annotator=enrolment.annotator
    )
    return EnrolmentSerializer(
        {
            "enrolment": enrolment,
            "progress": progress,
            "reconsent_required": enrolment_needs_reconsent(enrolment),
        }
    ).data


def _own_enrolment(project: Project, user: User) -> Enrolment:
    enrolment = selectors.enrolment_get(project=project, annotator=user)
    if enrolment is None:
        raise NotFound("You are not enrolled in this project.", code="not_enrolled")
    return enrolment


class ProjectConsentApi(BaseApi):
    """The exact consent text an annotator agrees to, and its version."""

    @extend_schema_serializer(component_name="ProjectConsent")
    class OutputSerializer(serializers.Serializer[Any]):
        project = serializers.IntegerField()
        text = serializers.CharField(help_text="The exact text an annotator consents to.")
        version = serializers.CharField(help_text="sha256 of the text; recorded with consent.")
        purposes = serializers.ListField(child=serializers.CharField())
        changes_since_your_consent = ConsentChangeSerializer(
            many=True,
            help_text="For an enrolled annotator whose consent was to earlier terms: the "
            "lines removed and added since (with a line of context); empty otherwise.",
        )

    @extend_schema(
        operation_id="projects_consent",
        responses={200: OutputSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        text = project_consent_text(project)
        enrolment = selectors.enrolment_get(project=project, annotator=user)
        changes = (
            consent_changes(enrolment.consent.text, text)
            if enrolment is not None and enrolment_needs_reconsent(enrolment)
            else []
        )
        data = {
            "project": project.pk,
            "text": text,
            "version": consent_text_version(text),
            "purposes": services.CONSENT_PURPOSES,
            "changes_since_your_consent": changes,
        }
        return Response(self.OutputSerializer(data).data)


class EnrolmentApi(BaseApi):
    """The caller's own enrolment in a project; POST gives consent (annotators only)."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema_serializer(component_name="EnrolmentCreateRequest")
    class CreateInputSerializer(serializers.Serializer[Any]):
        consent = serializers.BooleanField(
            help_text="Must be true: you read the consent text and agree. Also how an "
            "enrolled annotator consents again after the terms changed."
        )
        consent_version = serializers.RegexField(
            r"^[0-9a-f]{64}$",
            required=False,
            help_text="The version of the text you read (from the consent endpoint); if the "
            "terms changed since, 409 `consent_version_stale` and nothing is recorded.",
        )

        def validate_consent(self, value: bool) -> bool:
            if value is not True:
                raise serializers.ValidationError("Consent is required to enrol.")
            return value

    @extend_schema(
        operation_id="enrolment_retrieve",
        responses={200: EnrolmentSerializer, **error_responses(*READ_ERRORS)},
    )
    def get(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        return Response(_enrolment_data(_own_enrolment(project, user)))

    @extend_schema(
        operation_id="enrolment_create",
        request=CreateInputSerializer,
        responses={
            200: OpenApiResponse(EnrolmentSerializer, description="Already enrolled."),
            201: EnrolmentSerializer,
            **error_responses(*WRITE_ERRORS),
        },
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        serializer = self.CreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        existed = selectors.enrolment_get(project=project, annotator=user) is not None
        enrolment = services.enrolment_create(
            project=project,
            annotator=user,
            method="api",
            consent_version=serializer.validated_data.get("consent_version"),
        )
        return Response(
            _enrolment_data(enrolment),
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class EnrolmentSurveyApi(BaseApi):
    """Answer or edit the optional, self-reported demographic survey."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema_serializer(component_name="SurveyAnswersRequest")
    class InputSerializer(serializers.Serializer[Any]):
        answers = serializers.DictField(
            child=SafeJSONField(allow_null=True),
            help_text="Question key -> answer; every question is optional.",
        )

    @extend_schema(
        operation_id="enrolment_survey_submit",
        request=InputSerializer,
        responses={200: EnrolmentSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def put(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        enrolment = _own_enrolment(project, user)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        enrolment = services.enrolment_survey_submit(
            enrolment=enrolment, answers=serializer.validated_data["answers"]
        )
        return Response(_enrolment_data(enrolment))


class EnrolmentWithdrawApi(BaseApi):
    """Withdraw in one step: labels kept but excluded from every later analysis and export."""

    permission_classes = [IsAuthenticated, DenyAuditorWrites, IsAnnotator]

    @extend_schema(
        operation_id="enrolment_withdraw",
        request=None,
        responses={200: EnrolmentSerializer, **error_responses(*WRITE_ERRORS)},
    )
    def post(self, request: Request, project_id: int) -> Response:
        user = request_user(request)
        project = selectors.project_get_for(user=user, project_id=project_id)
        enrolment = services.enrolment_withdraw(enrolment=_own_enrolment(project, user), actor=user)
        return Response(_enrolment_data(enrolment))
