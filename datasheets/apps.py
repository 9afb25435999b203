from django.apps import AppConfig


class DatasheetsConfig(AppConfig):
    name = "datasheets"
    verbose_name = "Datasheets"
