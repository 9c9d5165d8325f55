"""The distro's version, kept in step with distro/pyproject.toml (a unit test checks)."""

__version__ = "0.1.0"
