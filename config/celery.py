"""The Celery application.

Configuration is read from Django settings under the ``CELERY_`` namespace. With no
broker configured (the embedded default), ``CELERY_TASK_ALWAYS_EAGER`` makes tasks run
in process; that is an explicit configuration, never a silent fallback when a
configured broker is down.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("chorus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
