"""What the Helm chart runs (`lumigo-injector serve`): webhook, operator and their helpers.

Imports `k8s/` and `spec/`, never the layer, ECS or the development tools (docs/operator.md).
"""
