from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Chorus core"

    def ready(self) -> None:
        from core.jobs import worker

        worker.connect()
