"""The library version matrix for the instrumentation tests.

CI runs the `oldest` and `newest` rows of each library; the full matrix command
(see docs/instrumentations.md) runs every row. Each row is a list of pip
requirement strings installed into the app's venv next to the distro.
Override one library's rows with env `LUMIGO_MATRIX_<LIB>` (e.g.
`LUMIGO_MATRIX_FLASK="flask==2.2.5 werkzeug<2.3"`): a single row, space separated.
"""

from __future__ import annotations

import os

MATRIX: dict[str, dict[str, list[str]]] = {
    "flask": {
        "oldest": ["flask==2.0.3", "werkzeug==2.0.3"],
        "newest": ["flask==3.1.*"],
    },
    "fastapi": {
        # 0.92: the oldest release the upstream instrumentation declares (`fastapi ~= 0.92`);
        # 0.90/0.91 are left alone by the version gate (tested in test_instr_registry.py)
        "oldest": ["fastapi==0.92.0", "uvicorn==0.20.0", "pydantic<2"],
        "newest": ["fastapi", "uvicorn"],
    },
    "botocore": {
        "oldest": ["boto3==1.41.*"],
        "newest": ["boto3"],
    },
    "pymongo": {
        "oldest": ["pymongo==3.12.3"],
        "newest": ["pymongo==4.*"],
    },
    "pymysql": {
        "oldest": ["pymysql==1.0.2"],
        "newest": ["pymysql"],
    },
}


def rows(lib: str, which: tuple[str, ...] = ("oldest", "newest")) -> list[tuple[str, list[str]]]:
    """(label, requirements) rows to test for `lib`, honouring the env override."""
    override = os.environ.get(f"LUMIGO_MATRIX_{lib.upper()}")
    if override:
        return [("override", override.split())]
    return [(label, MATRIX[lib][label]) for label in which if label in MATRIX[lib]]
