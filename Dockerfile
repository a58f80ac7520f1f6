# One image for the four services, the migration job and topic creation:
#   docker build -t innomatch .
#   docker run innomatch serve suppliers | migrate | create-topics
# Dependencies come from uv.lock exactly (--frozen); the build fails if the lock is stale.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ghcr.io/astral-sh/uv:0.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project itself, installed as a wheel so the runtime stage needs no sources.
COPY README.md ./
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /app --no-create-home innomatch
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INNOMATCH_HOST=0.0.0.0 \
    INNOMATCH_MODE=production \
    INNOMATCH_LOG_FORMAT=json
WORKDIR /app
USER 10001
EXPOSE 8010 8020 8030 8040
ENTRYPOINT ["innomatch"]
CMD ["--help"]
