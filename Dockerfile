# Two images from one file (docs/layer.md):
#   docker buildx build --target init --platform linux/amd64,linux/arm64 \
#       -t public.ecr.aws/lumigo/lumigo-otel-python-init:VERSION .
#   docker buildx build --target injector -t public.ecr.aws/lumigo/lumigo-injector:VERSION .
# Every RUN/ENTRYPOINT runs a project command that the test suite also runs
# (tests/layer/test_layer_build.py); this file only moves files between stages.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Interpreters used only to precompile each set's bytecode (bytecode does not depend on the
# architecture). The official images link python3.X with rpath $ORIGIN/../lib, so binary,
# libpython and stdlib copied side by side run in the builder; a set whose interpreter is
# missing or does not run ships sources only (build-layer checks each one).
FROM --platform=$BUILDPLATFORM python:3.9-slim-bookworm AS python3.9
FROM --platform=$BUILDPLATFORM python:3.10-slim-bookworm AS python3.10
FROM --platform=$BUILDPLATFORM python:3.11-slim-bookworm AS python3.11
FROM --platform=$BUILDPLATFORM python:3.13-slim-bookworm AS python3.13
FROM --platform=$BUILDPLATFORM python:3.14-slim-bookworm AS python3.14

# The layer is made with pip's cross-target installs, so the builder runs natively on the
# build machine whatever the target architecture is.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS layer-builder
COPY --from=python3.9 /usr/local/bin/python3.9 /usr/local/bin/
COPY --from=python3.9 /usr/local/lib/libpython3.9.so.1.0 /usr/local/lib/
COPY --from=python3.9 /usr/local/lib/python3.9 /usr/local/lib/python3.9
COPY --from=python3.10 /usr/local/bin/python3.10 /usr/local/bin/
COPY --from=python3.10 /usr/local/lib/libpython3.10.so.1.0 /usr/local/lib/
COPY --from=python3.10 /usr/local/lib/python3.10 /usr/local/lib/python3.10
COPY --from=python3.11 /usr/local/bin/python3.11 /usr/local/bin/
COPY --from=python3.11 /usr/local/lib/libpython3.11.so.1.0 /usr/local/lib/
COPY --from=python3.11 /usr/local/lib/python3.11 /usr/local/lib/python3.11
COPY --from=python3.13 /usr/local/bin/python3.13 /usr/local/bin/
COPY --from=python3.13 /usr/local/lib/libpython3.13.so.1.0 /usr/local/lib/
COPY --from=python3.13 /usr/local/lib/python3.13 /usr/local/lib/python3.13
COPY --from=python3.14 /usr/local/bin/python3.14 /usr/local/bin/
COPY --from=python3.14 /usr/local/lib/libpython3.14.so.1.0 /usr/local/lib/
COPY --from=python3.14 /usr/local/lib/python3.14 /usr/local/lib/python3.14
WORKDIR /src
COPY distro/ distro/
COPY injector/ injector/
RUN pip install --no-cache-dir ./distro ./injector
ARG TARGETARCH
RUN lumigo-injector build-layer --out /lumigo-layer --platform glibc musl --arch "${TARGETARCH}" --distro /src/distro

# init: the layer on busybox (sh, tar, find). Two ways to reach a pod from one layout:
# - init container: the entrypoint copies /lumigo-layer into the emptyDir it is given, exits 0;
# - image volume (Kubernetes 1.35+): the kubelet mounts this image read-only and app containers
#   mount its `lumigo-layer` folder (subPath) at /lumigo-otel; nothing runs, nothing is copied.
# The path is spec/names.py LAYER_IMAGE_SUBPATH (tests/layer/test_init_image.py checks both).
FROM busybox:1.37 AS init
COPY --from=layer-builder /lumigo-layer /lumigo-layer
USER 65532:65532
ENTRYPOINT ["/bin/sh", "/lumigo-layer/copy-layer.sh"]
CMD ["/lumigo-otel"]

# injector: the operator (mutating webhook, namespace/Secret handling, CLI). Only the injector
# project: the distro travels in the init image, the development tools (devtools/) nowhere.
FROM ${PYTHON_IMAGE} AS injector
WORKDIR /src
COPY injector/ injector/
RUN pip install --no-cache-dir ./injector
USER 65532:65532
EXPOSE 9443 8080
ENTRYPOINT ["lumigo-injector", "serve"]
