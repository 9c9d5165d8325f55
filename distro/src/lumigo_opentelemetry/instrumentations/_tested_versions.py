"""The library releases the distro instruments: from the oldest tested release on.

`TESTED[name]` holds the requirement(s) a library's installed distribution must meet, on
top of the range the upstream instrumentor declares. The lower bound is the `oldest` row of
the version matrix (tests/helpers/versions.py; docs/tested-versions.md has the results, a
test keeps the two equal); there is no upper bound beyond upstream's, since the matrix's
`newest` row is unpinned and follows each new release. A requirement whose distribution is
not installed is not checked (psycopg2 ships as `psycopg2` or as `psycopg2-binary`).
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

TESTED: Dict[str, Tuple[str, ...]] = {
    "flask": ("flask >= 2.0.3",),
    "fastapi": ("fastapi >= 0.92.0",),
    "botocore": ("botocore >= 1.41",),
    "pymongo": ("pymongo >= 3.12.3",),
    "pymysql": ("PyMySQL >= 1.0.2",),
    "requests": ("requests >= 2.25",),
    "django": ("django >= 4.2",),
    "psycopg2": ("psycopg2 >= 2.9.5", "psycopg2-binary >= 2.9.5"),
    "psycopg": ("psycopg >= 3.1",),
    "redis": ("redis >= 4.6",),
    "pika": ("pika >= 1.2",),
    "grpc": ("grpcio >= 1.51",),
    "httpx": ("httpx >= 0.23",),
    "langchain": ("langchain-core >= 0.3",),
}


def untested_version(name: str) -> Optional[str]:
    """Why the installed release of library `name` is older than the oldest tested, or None."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    for text in TESTED.get(name, ()):
        requirement = Requirement(text)
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            return (
                f'the installed "{requirement.name} {installed}" is older than the oldest '
                f'tested release ("{text}")'
            )
    return None
