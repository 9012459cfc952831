# The apsis-sso tooling and the apsis-sync daemon: one small, non-root image.
#   docker build -t apsis-sso .
#   docker run --rm --env-file .env apsis-sso apsis-sso account list
#   docker run --env-file .env apsis-sso            # the daemon (default command)
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY apsis_core ./apsis_core
COPY provisioning ./provisioning
COPY sync ./sync
COPY portal ./portal
COPY devenv ./devenv
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 apsis \
 && useradd --system --uid 10001 --gid apsis --home-dir /var/lib/apsis-sso --create-home apsis
COPY --from=build /opt/venv /opt/venv
COPY realm-templates /opt/apsis-sso/realm-templates
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APSIS_SSO_TEMPLATES_DIR=/opt/apsis-sso/realm-templates \
    APSIS_SYNC_DATA_DIR=/var/lib/apsis-sso
USER 10001:10001
WORKDIR /var/lib/apsis-sso
VOLUME ["/var/lib/apsis-sso"]
CMD ["apsis-sync", "run"]
