# syntax=docker/dockerfile:1
# One image for every happ process: `happ api` (the default), `happ worker`, `happ setup`.
#   docker build -t happ-integ .
#   docker run --env-file .env happ-integ                 # the gateway on :3001
#   docker run --env-file .env happ-integ happ worker     # a Temporal worker
# docker-compose.yml wires it to PostgreSQL and Temporal; see deploy/README.md.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: install the project and its dependencies into a virtualenv ----
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/happ
WORKDIR /src
COPY . .
RUN /opt/happ/bin/pip install --upgrade pip \
 && /opt/happ/bin/pip install .

# ---- runtime: the virtualenv only, run as an unprivileged user ----
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/happ/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HAPP_API_HOST=0.0.0.0 \
    HAPP_API_PORT=3001 \
    HAPP_LOG_FORMAT=json \
    HAPP_DATA_DIR=/app/.happ
RUN groupadd --system --gid 10001 happ \
 && useradd --system --uid 10001 --gid happ --home-dir /app --shell /usr/sbin/nologin happ \
 && mkdir -p /app/.happ \
 && chown -R happ:happ /app
COPY --from=build /opt/happ /opt/happ
WORKDIR /app
USER happ:happ
# 3001: `happ api`; 9464: a worker's metrics when HAPP_METRICS_PORT=9464 (as compose sets it).
EXPOSE 3001 9464
CMD ["happ", "api"]
