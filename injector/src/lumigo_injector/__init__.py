"""lumigo-injector: inject the Lumigo Python distro into Kubernetes pods and ECS tasks."""

__version__ = "0.1.0"
