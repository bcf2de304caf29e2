# syntax=docker/dockerfile:1
# warmpool-operator image: build wheels in one stage, install them into a venv in a slim runtime stage.
# The runtime runs as a numeric non-root user, needs no shell and writes nothing to the root filesystem
# (the chart mounts an emptyDir at /tmp and sets readOnlyRootFilesystem).
#
#   docker build -t warmpool-operator:dev --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the project wheel plus every dependency as a wheel ------------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="warmpool-operator" \
      org.opencontainers.image.description="Kubernetes operator that right-sizes the AWS VPC CNI's warm IP pools from observed churn" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/warmpool/warmpool" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"

ENV VIRTUAL_ENV=/opt/warmpool \
    PATH=/opt/warmpool/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    WARMPOOL_LOG_FORMAT=json

# Install from the build stage's wheels only (no index); bytecode is compiled now, while the filesystem is
# writable, so a read-only root filesystem costs nothing at start-up. pip is removed from the venv afterwards.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "${VIRTUAL_ENV}" \
    && "${VIRTUAL_ENV}/bin/pip" install --no-cache-dir --no-index --find-links=/wheels --compile warmpool-operator \
    && "${VIRTUAL_ENV}/bin/pip" uninstall --yes pip \
    && "${VIRTUAL_ENV}/bin/warmpool" --version

# 65532: the conventional "nonroot" id (distroless); numeric, so runAsNonRoot can be verified by the kubelet.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9090
# Exec form: no shell at runtime. Flags and WARMPOOL_* env vars configure it (see `warmpool run --help`).
ENTRYPOINT ["/opt/warmpool/bin/warmpool", "run"]
