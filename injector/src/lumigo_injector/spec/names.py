"""Names and paths shared by the Kubernetes mutation, ECS, the operator and the CLI.

Every annotation, label, volume, container, path and environment variable name that the
injector writes into workloads is defined here once. Two kinds of names live elsewhere, on
purpose: the layer's own folder names and default destination (`layer/`, which stands alone;
tests/spec/test_layering.py checks they agree with `MOUNT_PATH` and `BOOTSTRAP_PATH`), and
the Helm chart's, which are YAML.
"""

from __future__ import annotations

from typing import Final

from lumigo_injector import __version__

# --- annotations (on a pod, a pod template, a workload or a namespace) -----------------------
ANNOTATION_PREFIX: Final = "lumigo.io/"
#: "python" asks for injection, "false" opts out (wins over a namespace or --all).
ANNOTATION_INJECT: Final = "lumigo.io/inject"
#: Comma list of app container names to inject; default: every app container.
ANNOTATION_CONTAINER_NAMES: Final = "lumigo.io/container-names"
#: Name and key of the Secret holding the Lumigo token (read by the kubelet, never by us).
ANNOTATION_SECRET_NAME: Final = "lumigo.io/secret-name"
ANNOTATION_SECRET_KEY: Final = "lumigo.io/secret-key"
#: Explicit OTEL_SERVICE_NAME for the pod's containers.
ANNOTATION_SERVICE_NAME: Final = "lumigo.io/service-name"
#: "true" sets LUMIGO_ENABLE_LOGS=true in the injected containers ("false" opts a pod out of
#: a namespace's "true").
ANNOTATION_ENABLE_LOGS: Final = "lumigo.io/enable-logs"
#: How the layer reaches the pod: "init-container", "image-volume" or "auto" (the operator's
#: choice). On a pod (template) or a namespace; the pod's wins.
ANNOTATION_DELIVERY: Final = "lumigo.io/delivery"
#: Set by the injector: the layer version that was injected.
ANNOTATION_INJECTED: Final = "lumigo.io/injected"
#: Set by the injector: JSON record of what it added or changed, so `uninject` is exact.
ANNOTATION_INJECTION_STATE: Final = "lumigo.io/injection-state"
#: Set by the operator on a workload: its template's inject value before propagation.
ANNOTATION_TEMPLATE_PREVIOUS: Final = "lumigo.io/inject-template-previous"
#: Set by the operator on a workload: its template's enable-logs value before propagation.
ANNOTATION_ENABLE_LOGS_TEMPLATE_PREVIOUS: Final = "lumigo.io/enable-logs-template-previous"
#: Set by the operator on a workload whose injected rollout crash-looped: the reason. While
#: present the template is kept uninjected; removing it tries injection again.
ANNOTATION_INJECT_PAUSED: Final = "lumigo.io/inject-paused"
#: Set by the operator on a workload it restarted (catch-up or upgrade): "<reason> <time>".
ANNOTATION_RESTARTED: Final = "lumigo.io/restarted"

INJECT_PYTHON: Final = "python"
INJECT_FALSE: Final = "false"

# --- what the mutation adds ----------------------------------------------------------------
VOLUME_NAME: Final = "lumigo-otel"
INIT_CONTAINER_NAME: Final = "lumigo-otel-init"
MOUNT_PATH: Final = "/lumigo-otel"
#: The only directory put on PYTHONPATH: it holds the layer's sitecustomize.py.
BOOTSTRAP_PATH: Final = MOUNT_PATH + "/bootstrap"
#: Where the layer lies inside the init image (Dockerfile: `COPY ... /lumigo-layer`): the
#: init container copies it from there, and an image volume mounts it with this subPath.
LAYER_IMAGE_SUBPATH: Final = "lumigo-layer"
#: The autowrapt entry point name of the distro.
AUTOWRAPT_ENTRY_POINT: Final = "lumigo_opentelemetry"

DEFAULT_INIT_IMAGE: Final = f"public.ecr.aws/lumigo/lumigo-otel-python-init:{__version__}"
DEFAULT_SECRET_NAME: Final = "lumigo-credentials"
DEFAULT_SECRET_KEY: Final = "token"
DEFAULT_VOLUME_SIZE_LIMIT: Final = "200Mi"
DEFAULT_LAYER_VERSION: Final = __version__

#: The init image's user (the distroless "nonroot" id); set explicitly on the init container
#: only when the pod itself runs as root. The layer files it copies are world-readable, so
#: app containers running as any user can read them.
INIT_CONTAINER_USER: Final = 65532
INIT_CONTAINER_CPU_REQUEST: Final = "50m"
INIT_CONTAINER_CPU_LIMIT: Final = "500m"
INIT_CONTAINER_MEMORY_REQUEST: Final = "64Mi"
INIT_CONTAINER_MEMORY_LIMIT: Final = "128Mi"

# --- environment variables set in app containers -------------------------------------------
ENV_PYTHONPATH: Final = "PYTHONPATH"
ENV_AUTOWRAPT_BOOTSTRAP: Final = "AUTOWRAPT_BOOTSTRAP"
ENV_TRACER_TOKEN: Final = "LUMIGO_TRACER_TOKEN"
ENV_SERVICE_NAME: Final = "OTEL_SERVICE_NAME"
ENV_RESOURCE_ATTRIBUTES: Final = "OTEL_RESOURCE_ATTRIBUTES"
ENV_ENDPOINT: Final = "LUMIGO_ENDPOINT"
#: Set to "true" when logs are asked for (annotation `lumigo.io/enable-logs`, `ecs --enable-logs`).
ENV_ENABLE_LOGS: Final = "LUMIGO_ENABLE_LOGS"
#: The injected container's own name (the distro's resource attribute `k8s.container.name`).
ENV_CONTAINER_NAME: Final = "LUMIGO_CONTAINER_NAME"
#: Downward-API variables, referenced as $(NAME) from OTEL_RESOURCE_ATTRIBUTES.
ENV_K8S_NAMESPACE_NAME: Final = "LUMIGO_K8S_NAMESPACE_NAME"
ENV_K8S_POD_NAME: Final = "LUMIGO_K8S_POD_NAME"
ENV_K8S_POD_UID: Final = "LUMIGO_K8S_POD_UID"
ENV_K8S_NODE_NAME: Final = "LUMIGO_K8S_NODE_NAME"

# --- labels on objects the injector manages (e.g. the mirrored token Secret) ---------------
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "lumigo-injector"
