"""Kubernetes: the pod mutation, workload-template propagation, manifest files.

`mutation.inject` runs the steps (`site`, `options`, `steps`; `undo.uninject` reverses them),
`propagation` plans the operator's template patches, `manifests` reads and writes YAML/JSON.
Pure, built on `spec/`.
"""
