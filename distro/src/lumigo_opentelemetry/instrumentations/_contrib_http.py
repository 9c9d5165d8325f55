"""What the lean WSGI and ASGI request-attribute builders share.

`_wsgi_attributes` and `_asgi_attributes` reproduce contrib's `collect_request_attributes`
for the contrib release they were checked against (`CHECKED`). Both run contrib's
`redact_url` only on a URL it could change, and both need contrib's synthetic user-agent
verdict, which depends on the user agent alone.
"""

from __future__ import annotations

import re
from typing import Dict, Optional

#: contrib releases whose `collect_request_attributes` the builders reproduce
CHECKED = frozenset({"0.66b1"})
_MEMO_SIZE = 256
_AGENT_LENGTH = 512


def checked_release(instrumentation: str) -> bool:
    """Whether `instrumentation` (contrib's WSGI or ASGI distribution) and the contrib
    packages its attributes come from are all installed at a `CHECKED` release."""
    from lumigo_opentelemetry.instrumentations._version_gate import installed_version

    names = (instrumentation, "opentelemetry-instrumentation", "opentelemetry-util-http")
    return all(installed_version(name) in CHECKED for name in names)


class UrlRedaction:
    """`redact_url(url)`, run only when `url` could hold what it changes: userinfo, an
    escape, a character `urlsplit` drops (a tab or line break, which may split a name it
    redacts) or the name of a parameter it redacts."""

    def __init__(self) -> None:
        from opentelemetry.util.http import PARAMS_TO_REDACT, redact_url

        self._redact = redact_url
        self._may_change = re.compile(
            "[@%\t\r\n]|" + "|".join(re.escape(str(p)) for p in PARAMS_TO_REDACT)
        ).search

    def __call__(self, url: str) -> str:
        return self._redact(url) if self._may_change(url) is not None else url


class SyntheticAgents:
    """`detect_synthetic_user_agent(agent)`, remembered per user agent (bounded)."""

    def __init__(self) -> None:
        from opentelemetry.util.http import detect_synthetic_user_agent

        self._detect = detect_synthetic_user_agent
        self._known: Dict[str, Optional[str]] = {}

    def __call__(self, agent: str) -> Optional[str]:
        known = self._known.get(agent, "")
        if known != "":
            return known
        found = self._detect(agent)
        if len(agent) <= _AGENT_LENGTH:
            if len(self._known) >= _MEMO_SIZE:
                self._known.clear()
            self._known[agent] = found
        return found
