# syntax=docker/dockerfile:1.7
# credit-scorer image: one image for the stream worker, the REST API and the one-shot prepare job.
#   docker build -t credit-scorer .        (docker-compose.yml builds it as credit-scorer:local)
# Stage 1 resolves the locked dependencies with uv into /opt/venv; stage 2 copies only that venv onto a
# slim Python runtime and runs as a non-root user.
ARG PYTHON_VERSION=3.11

# The same uv minor as the one that wrote uv.lock (lock revisions are not readable by older uv).
FROM ghcr.io/astral-sh/uv:0.13 AS uv

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first (cached layer while only the code changes).
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY credit_scorer/ credit_scorer/
COPY schemas/ schemas/
COPY feature_loader/ feature_loader/
COPY feature_cache/ feature_cache/
COPY synthetic_data/ synthetic_data/
COPY training/ training/
COPY scoring/ scoring/
COPY kafka_io/ kafka_io/
COPY stream_app/ stream_app/
COPY replay/ replay/
COPY api/ api/
COPY dashboards/ dashboards/
COPY devtools/ devtools/
COPY decision_store/ decision_store/
COPY officer_view/ officer_view/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# libgomp1: LightGBM's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 scorer \
    && useradd --system --uid 10001 --gid scorer --home-dir /home/scorer --create-home scorer \
    && mkdir -p /var/lib/credit-scorer/models \
    && chown -R scorer:scorer /var/lib/credit-scorer
COPY --from=builder /opt/venv /opt/venv
COPY docker/ /app/docker/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CREDIT_SCORER_PATHS__DATA_DIR=/var/lib/credit-scorer \
    CREDIT_SCORER_API__HOST=0.0.0.0 \
    CREDIT_SCORER_API__PORT=8000 \
    CREDIT_SCORER_STREAM__METRICS_PORT=9464
USER scorer
WORKDIR /app
VOLUME ["/var/lib/credit-scorer"]
# 8000: REST API; 9464: the worker's /metrics; 9465: the store sink's; 8501: the officer view.
EXPOSE 8000 9464 9465 8501
# The API's GET /health (200 only when model, Redis and feature versions are fine); the worker service
# overrides the URL with HEALTHCHECK_URL=http://127.0.0.1:9464/metrics.
HEALTHCHECK --interval=10s --timeout=4s --start-period=60s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
CMD ["credit-scorer", "api", "serve"]
