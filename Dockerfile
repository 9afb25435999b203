# Chorus application image: gunicorn web and Celery workers share it (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PYTHONPATH=/app \
    MEDIA_ROOT=/data/media \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first, from the runtime lock alone (pinned, hash-checked: the versions CI
# tested), so a code change reuses this layer.
# torch is locked to its CPU build (2.13.0+cpu), which PyTorch's own index serves; a CUDA
# worker image needs the CUDA build of the same release instead (README, GPU workers).
COPY requirements/base.lock.txt ./requirements/
RUN pip install --require-hashes --no-deps --extra-index-url https://download.pytorch.org/whl/cpu \
    -r requirements/base.lock.txt

# The code runs from /app (PYTHONPATH), one copy, so web, workers and manage.py agree on
# BASE_DIR; installing it into site-packages as well would give Celery a second copy.
COPY . .

# Collected with the production storage (DEBUG=0: hashed names and a manifest), which
# needs a secret key to import settings; this one exists only in this build step. WhiteNoise
# serves them from here; docker-compose's `static` service copies them to /srv/static, the
# volume nginx serves them from (a volume keeps its first content: it cannot be the source).
RUN DEBUG=0 SECRET_KEY=build-step-only-collectstatic-key-never-used-at-runtime \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin chorus \
    && mkdir -p /data/media /data/cache /srv/static \
    && chown chorus /data/media /data/cache /srv/static
USER chorus

EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
