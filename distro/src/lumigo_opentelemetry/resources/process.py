"""Process resource attributes: the runtime and the (masked) environment."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Dict, Mapping, Optional

from lumigo_opentelemetry.masking import Masking, Site


def runtime_attributes() -> Dict[str, str]:
    """`process.runtime.*` as the semantic conventions name them."""
    return {
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version,
    }


def _sorted_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def environ_attribute(masking: Masking, environ: Optional[Mapping[str, str]] = None) -> str:
    """The environment as a JSON object, masked for `Site.ENVIRONMENT`: values of
    secret-looking keys become `****`, URL userinfo and the tracer token too."""
    env = os.environ if environ is None else environ
    return masking.apply(Site.ENVIRONMENT, dict(env), encode=_sorted_json)


def process_attributes(
    masking: Masking, environ: Optional[Mapping[str, str]] = None
) -> Dict[str, object]:
    attributes: Dict[str, object] = dict(runtime_attributes())
    attributes["process.executable.path"] = sys.executable
    attributes["process.environ"] = environ_attribute(masking, environ)
    return attributes
