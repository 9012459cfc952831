# The apsis-sso tooling and the apsis-sync daemon: one small, non-root image, installed from
# the lock file only (hashes checked; nothing resolved at build time) by the same script a
# test runs outside Docker (scripts/install.sh; tests/production/test_image_install.py).
#   docker build -t apsis-sso .
#   docker run --rm --env-file .env apsis-sso apsis-sso account list
#   docker run --env-file .env apsis-sso            # the daemon (default command)
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY scripts/install.sh ./scripts/
COPY requirements ./requirements
RUN scripts/install.sh deps /opt/venv
COPY pyproject.toml README.md ./
COPY apsis_core ./apsis_core
COPY realm-templates ./realm-templates
COPY provisioning ./provisioning
COPY sync ./sync
COPY portal ./portal
RUN scripts/install.sh app /opt/venv

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 apsis \
 && useradd --system --uid 10001 --gid apsis --home-dir /var/lib/apsis-sso --no-create-home apsis \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/apsis-sso /var/lib/apsis-sso/secrets
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APSIS_SYNC_DATA_DIR=/var/lib/apsis-sso \
    APSIS_SYNC_METRICS_PORT=9100
USER 10001:10001
WORKDIR /var/lib/apsis-sso
# The state database and, in secrets/, one client secret per account (named volumes
# mounted here start with this ownership: uid 10001, mode 0700).
VOLUME ["/var/lib/apsis-sso", "/var/lib/apsis-sso/secrets"]
EXPOSE 9100
# The daemon's /livez: 503 only when its loop is stuck (a Keycloak outage is /readyz's
# business, never a restart). One-off commands (apsis-sso ...) finish long before the start period ends.
HEALTHCHECK --interval=30s --timeout=10s --start-period=5m --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('APSIS_SYNC_METRICS_PORT', '9100'), timeout=5)"]
CMD ["apsis-sync", "run"]
