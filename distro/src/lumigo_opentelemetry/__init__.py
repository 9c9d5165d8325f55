"""Lumigo OpenTelemetry distro (skeleton: filled in by the foundation issue)."""


def init() -> None:
    """Initialise tracing once."""
