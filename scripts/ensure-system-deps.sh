#!/usr/bin/env bash
# Install the Debian packages the test suite needs, only those that are missing.
#
#   redis-server  broker for the Celery integration run (scripts/test-services.sh)
#   postgresql    server binaries for the throwaway test cluster (initdb, pg_ctl)
#   chromium      headless browser for the tests marked `browser`
#   nginx         the reverse proxy of docker-compose, run in front of gunicorn by
#                 tests/test_deployment.py
#
# apt-get update runs at most once, and only when something has to be installed.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $EUID -ne 0 ]]; then
    echo "ensure-system-deps: missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
fi

echo "ensure-system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
