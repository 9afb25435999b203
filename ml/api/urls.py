from django.urls import path

from ml.api import datasets, training

urlpatterns = [
    path(
        "projects/<int:project_id>/datasets/",
        datasets.ProjectDatasetsApi.as_view(),
        name="api-project-datasets",
    ),
    path(
        "projects/<int:project_id>/datasets/dry-run/",
        datasets.ProjectDatasetDryRunApi.as_view(),
        name="api-project-datasets-dry-run",
    ),
    path("datasets/<int:version_id>/", datasets.DatasetVersionApi.as_view(), name="api-dataset"),
    path(
        "datasets/<int:version_id>/download/",
        datasets.DatasetDownloadApi.as_view(),
        name="api-dataset-download",
    ),
    path(
        "datasets/<int:version_id>/files/<path:path>",
        datasets.DatasetFileApi.as_view(),
        name="api-dataset-file",
    ),
    path(
        "datasets/<int:version_id>/compare/<int:other_id>/",
        datasets.DatasetCompareApi.as_view(),
        name="api-dataset-compare",
    ),
    path(
        "datasets/<int:version_id>/rebuild/",
        datasets.DatasetRebuildApi.as_view(),
        name="api-dataset-rebuild",
    ),
    path(
        "datasets/<int:version_id>/retry/",
        datasets.DatasetRetryApi.as_view(),
        name="api-dataset-retry",
    ),
    path(
        "projects/<int:project_id>/training-runs/",
        training.ProjectTrainingRunsApi.as_view(),
        name="api-project-training-runs",
    ),
    path(
        "datasets/<int:version_id>/training-runs/",
        training.DatasetTrainingRunsApi.as_view(),
        name="api-dataset-training-runs",
    ),
    path("training-runs/<int:run_id>/", training.TrainingRunApi.as_view(), name="api-training-run"),
    path(
        "training-runs/<int:run_id>/cancel/",
        training.TrainingRunCancelApi.as_view(),
        name="api-training-run-cancel",
    ),
    path(
        "training-runs/<int:run_id>/download/",
        training.TrainingRunDownloadApi.as_view(),
        name="api-training-run-download",
    ),
    path(
        "training-runs/<int:run_id>/files/<path:path>",
        training.TrainingRunFileApi.as_view(),
        name="api-training-run-file",
    ),
]
