from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Machine learning"

    def ready(self) -> None:
        # Registers the build task (a job kind) in every process: services enqueue it.
        from ml import receivers, tasks  # noqa: F401

        receivers.connect()
