"""Process resource attributes: the runtime and the (masked) environment."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Dict, Mapping, Optional

from lumigo_opentelemetry.masking import MASKED, MaskingRules


def runtime_attributes() -> Dict[str, str]:
    """`process.runtime.*` as the semantic conventions name them."""
    return {
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "process.runtime.description": sys.version,
    }


def environ_attribute(masking: MaskingRules, environ: Optional[Mapping[str, str]] = None) -> str:
    """The environment as a JSON object; values of secret-looking keys become `****`."""
    env = os.environ if environ is None else environ
    masked = {key: (MASKED if masking.is_secret(key) else value) for key, value in env.items()}
    return json.dumps(masked, sort_keys=True, ensure_ascii=False)


def process_attributes(
    masking: MaskingRules, environ: Optional[Mapping[str, str]] = None
) -> Dict[str, object]:
    attributes: Dict[str, object] = dict(runtime_attributes())
    attributes["process.executable.path"] = sys.executable
    attributes["process.environ"] = environ_attribute(masking, environ)
    return attributes
