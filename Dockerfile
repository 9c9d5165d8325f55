# Two images from one file (docs/layer.md):
#   docker buildx build --target init --platform linux/amd64,linux/arm64 \
#       -t public.ecr.aws/lumigo/lumigo-otel-python-init:VERSION .
#   docker buildx build --target injector -t public.ecr.aws/lumigo/lumigo-injector:VERSION .
# Every RUN/ENTRYPOINT runs a project command that the test suite also runs
# (tests/e2e/test_layer_build.py); this file only moves files between stages.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# The layer is made with pip's cross-target installs, so the builder runs natively on the
# build machine whatever the target architecture is.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS layer-builder
WORKDIR /src
COPY distro/ distro/
COPY injector/ injector/
RUN pip install --no-cache-dir ./distro ./injector
ARG TARGETARCH
RUN lumigo-injector build-layer --out /lumigo-layer --platform glibc musl --arch "${TARGETARCH}" --distro /src/distro

# init: the layer on busybox (sh, tar, find); copies itself into the shared volume, exits 0.
FROM busybox:1.37 AS init
COPY --from=layer-builder /lumigo-layer /lumigo-layer
USER 65532:65532
ENTRYPOINT ["/bin/sh", "/lumigo-layer/copy-layer.sh"]
CMD ["/lumigo-otel"]

# injector: the operator (mutating webhook, namespace/Secret handling, CLI).
FROM ${PYTHON_IMAGE} AS injector
WORKDIR /src
COPY distro/ distro/
COPY injector/ injector/
RUN pip install --no-cache-dir ./distro ./injector
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["lumigo-injector", "serve"]
