# One image, both programs: the sidecar (entrypoint `llm-rollout-proxy`, what injected pods
# run) and the operator (`python -m rollout_operator`, the chart's Deployment command).
#
#   docker build -t ghcr.io/llm-rollout/llm-rollout:0.1.0 .
#
# The base is pinned to an exact patch tag; pin it by digest too in your registry mirror
# (`FROM python:3.11.14-slim-bookworm@sha256:...`) for byte-for-byte reproducible builds.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/llm-rollout
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY proxy ./proxy
COPY rollout_operator ./rollout_operator
# The runtime dependencies only, at the versions requirements.lock pins, from wheels only:
# no compiler is needed here and none reaches the final stage.
RUN /opt/llm-rollout/bin/pip install --only-binary=:all: --constraint requirements.lock . \
 && /opt/llm-rollout/bin/pip uninstall --yes pip

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="llm-rollout" \
      org.opencontainers.image.description="LLM traffic rollout sidecar and operator" \
      org.opencontainers.image.licenses="Apache-2.0"
# No package manager tooling in the final image: only the interpreter and the app's venv.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && groupadd --gid 10001 llm-rollout \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin llm-rollout
COPY --from=build /opt/llm-rollout /opt/llm-rollout
COPY docker/startup.yaml /etc/llm-rollout/startup.yaml
ENV PATH=/opt/llm-rollout/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# Data port (loopback only) and admin port; the operator uses 8090/8091/9443.
EXPOSE 8100 8101
ENTRYPOINT ["llm-rollout-proxy"]
CMD ["--config", "/etc/llm-rollout/startup.yaml"]
