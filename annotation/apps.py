from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        # Registers the annotation tasks in every process, not only in workers (whose startup
        # autodiscovers them): ingest and analysis enqueue them by name, because
        # annotation.tasks imports those modules and may not be imported back by them.
        from annotation import tasks  # noqa: F401
