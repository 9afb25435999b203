"""Dataset version and training run pages (names are global, as in annotation.urls)."""

from django.urls import URLPattern, URLResolver, path

from ml import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("research/projects/<int:project_id>/datasets/", views.dataset_list, name="dataset-list"),
    path(
        "research/projects/<int:project_id>/datasets/new/",
        views.dataset_new,
        name="dataset-new",
    ),
    path("research/datasets/<int:version_id>/", views.dataset_detail, name="dataset-detail"),
    path(
        "research/datasets/<int:version_id>/rebuild/",
        views.dataset_rebuild,
        name="dataset-rebuild",
    ),
    path("research/datasets/<int:version_id>/retry/", views.dataset_retry, name="dataset-retry"),
    path(
        "research/projects/<int:project_id>/training/",
        views.training_list,
        name="training-list",
    ),
    path("research/datasets/<int:version_id>/train/", views.training_new, name="training-new"),
    path("research/training/<int:run_id>/", views.training_detail, name="training-detail"),
    path("research/training/<int:run_id>/cancel/", views.training_cancel, name="training-cancel"),
]
