"""The library version matrix for the instrumentation tests.

CI runs the `oldest` and `newest` rows of each library; the full matrix command
`uv run python scripts/version_matrix.py` runs every row (`--quick`: oldest and newest)
and writes docs/tested-versions.md. Each row is a list of pip
requirement strings installed into the app's venv next to the distro.
Override one library's rows with env `LUMIGO_MATRIX_<LIB>` (e.g.
`LUMIGO_MATRIX_FLASK="flask==2.2.5 werkzeug<2.3"`): a single row, space separated.
"""

from __future__ import annotations

import os

# psycopg 3.1 has no binary wheels for 3.13; 3.2.2 is the first release that has
_PSYCOPG_OLDEST = [
    'psycopg[binary]==3.1.*;python_version<"3.13"',
    'psycopg[binary]==3.2.2;python_version>="3.13"',
]

MATRIX: dict[str, dict[str, list[str]]] = {
    "flask": {
        "oldest": ["flask==2.0.3", "werkzeug==2.0.3"],
        "2.3": ["flask==2.3.*", "werkzeug==2.3.*"],
        "newest": ["flask==3.1.*"],
    },
    "fastapi": {
        # 0.92: the oldest release the upstream instrumentation declares (`fastapi ~= 0.92`);
        # 0.90/0.91 are left alone by the version gate (test_instr_registry.py runs 0.90.1)
        "oldest": ["fastapi==0.92.0", "uvicorn==0.20.0", "pydantic<2"],
        "0.115": ["fastapi==0.115.*", "uvicorn==0.30.*"],
        "newest": ["fastapi", "uvicorn"],
    },
    "botocore": {
        # supported: the current release and releases up to one year old
        "oldest": ["boto3==1.41.*"],
        "1.42": ["boto3==1.42.*"],
        "1.43": ["boto3==1.43.*"],
        "newest": ["boto3"],
    },
    "pymongo": {
        "oldest": ["pymongo==3.12.3"],
        "4.0": ["pymongo==4.0.*"],
        "4.6": ["pymongo==4.6.*"],
        "4.10": ["pymongo==4.10.*"],
        "newest": ["pymongo==4.*"],
    },
    "pymysql": {
        "oldest": ["pymysql==1.0.2"],
        "1.0.3": ["pymysql==1.0.3"],
        "1.1": ["pymysql==1.1.*"],
        "newest": ["pymysql"],
    },
    # the libraries of issue 14 (tests/distro/test_instr_new_apps.py). `oldest` is the oldest
    # release that runs on each interpreter: where a release has no wheels for a newer
    # CPython (and does not build or import there), a marker picks the first one that has.
    "django": {
        "oldest": ["django==4.2.*", *_PSYCOPG_OLDEST],
        "newest": ["django", "psycopg[binary]"],
    },
    "psycopg2": {
        "oldest": [
            'psycopg2-binary==2.9.5;python_version<"3.13"',
            # 2.9.5 built from source for 3.13 does not import (undefined _PyInterpreterState_Get)
            'psycopg2-binary==2.9.10;python_version>="3.13"',
        ],
        "newest": ["psycopg2-binary"],
    },
    "psycopg": {"oldest": _PSYCOPG_OLDEST, "newest": ["psycopg[binary]"]},
    "redis": {"oldest": ["redis==4.6.*"], "newest": ["redis"]},
    "pika": {"oldest": ["pika==1.2.*"], "newest": ["pika"]},
    "grpc": {
        "oldest": [
            'grpcio==1.51.*;python_version<"3.12"',
            'grpcio==1.59.0;python_version=="3.12"',  # the first release with 3.12 wheels
            'grpcio==1.66.2;python_version>="3.13"',  # the first release with 3.13 wheels
        ],
        "newest": ["grpcio"],
    },
    "httpx": {"oldest": ["httpx==0.23.*"], "newest": ["httpx"]},
    "requests": {"oldest": ["requests==2.25.*"], "newest": ["requests"]},
    "langchain": {"oldest": ["langchain-core==0.3.*"], "newest": ["langchain-core"]},
}


def labels(lib: str) -> tuple[str, ...]:
    """Every row label of `lib`, oldest first (the full matrix)."""
    return tuple(MATRIX[lib])


def rows(lib: str, which: tuple[str, ...] = ("oldest", "newest")) -> list[tuple[str, list[str]]]:
    """(label, requirements) rows to test for `lib`, honouring the env override."""
    override = os.environ.get(f"LUMIGO_MATRIX_{lib.upper()}")
    if override:
        return [("override", override.split())]
    return [(label, MATRIX[lib][label]) for label in which if label in MATRIX[lib]]
