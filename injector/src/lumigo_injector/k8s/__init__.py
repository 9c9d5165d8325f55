"""Kubernetes: the pod mutation, workload-template propagation, manifest files."""
