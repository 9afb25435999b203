"""Project wiring: settings, URLs, the Celery app. Holds no domain logic."""

from config.celery import app as celery_app

__all__ = ("celery_app",)
