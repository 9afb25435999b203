"""The registered names and time limits of the annotation app's Celery tasks.

A module of constants alone: the services that enqueue a task look it up by name
(``current_app.tasks[NAME]``) instead of importing ``annotation.tasks``, and
``annotation.tasks`` reads its names and limits here, so importing it (every process does,
from ``AnnotationConfig.ready``) loads neither pandas nor matplotlib.
"""

IMPORT_BATCH_RUN_TASK = "annotation.import_batch_run"
IMPORT_TIME_LIMIT_S = 2 * 3600
AGREEMENT_ANALYSIS_TASK = "annotation.agreement_analysis"
ANALYSIS_TIME_LIMIT_S = 30 * 60
