# syntax=docker/dockerfile:1
# ingressfed container image: one image runs the controller (`ingressfed run`), the proxy
# (`ingressfed proxy`) and the embedded DNS server (`ingressfed dns-serve`).
# .ci/image-check.sh performs the same pip steps in fresh venvs, so CI exercises this build without Docker.

ARG PYTHON_IMAGE=python:3.11-slim
# Extras baked into the image: Kubernetes members, Route53, Cloud DNS. Not demo/test.
ARG EXTRAS=kube,route53,clouddns

############################ builder: wheels for the project and every runtime dependency
FROM ${PYTHON_IMAGE} AS builder
ARG EXTRAS
# The proxy's request path is compiled with mypyc (ADR 0016): the builder needs a C compiler; the
# runtime stage gets only the wheel.
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INGRESSFED_COMPILE=1
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md setup.py ./
COPY buildtools ./buildtools
COPY ingressfed ./ingressfed
COPY providers ./providers
COPY geo ./geo
# 1. the project's own wheel; 2. wheels of its runtime dependencies with the chosen extras.
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m pip wheel --wheel-dir /wheels "$(ls /wheels/ingressfed-*.whl)[${EXTRAS}]"

############################ runtime: wheels only, no compilers, no build tools, non-root
FROM ${PYTHON_IMAGE} AS runtime
ARG EXTRAS
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/ingressfed/bin:$PATH
# 3. a fresh venv installed from the builder's wheels only (--no-index: nothing else can sneak in);
#    pip is removed afterwards, the app does not need it at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv /opt/ingressfed \
 && /opt/ingressfed/bin/pip install --no-index --find-links /wheels "ingressfed[${EXTRAS}]" \
 && /opt/ingressfed/bin/python -m pip uninstall --yes pip
RUN groupadd --system --gid 65532 ingressfed \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin ingressfed \
 && mkdir -p /var/lib/ingressfed /etc/ingressfed \
 && chown 65532:65532 /var/lib/ingressfed \
 && ingressfed --version
# Writable state (feed state, zone file) lives here; in Kubernetes it is an emptyDir.
VOLUME ["/var/lib/ingressfed"]
USER 65532:65532
WORKDIR /var/lib/ingressfed
# controller 9090, proxy 8080 (admin 8081), DNS 5353/udp+tcp; all above 1024, no capabilities needed.
EXPOSE 8080 8081 9090 5353/udp 5353/tcp
ENTRYPOINT ["ingressfed"]
CMD ["--help"]
