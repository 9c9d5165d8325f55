"""Secret masking shared by the environment resource and payload capture.

A key is secret when one of the masking regexes matches the *whole* key,
case-insensitively. Rules come from `LUMIGO_SECRET_MASKING_REGEX`, a JSON list of
regexes; a broken value falls back to the defaults with one warning.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Pattern, Sequence, Tuple

MASKED = "****"
DEFAULT_REGEXES: Tuple[str, ...] = (
    ".*pass.*",
    ".*key.*",
    ".*secret.*",
    ".*credential.*",
    ".*passphrase.*",
)
#: bound on the per-rules cache of `is_secret` answers (keys can come from request data)
_CACHE_SIZE = 2048


@dataclass(frozen=True)
class MaskingRules:
    """Compiled masking regexes."""

    patterns: Tuple[Pattern[str], ...]
    # answers of `is_secret` by key: header names and JSON keys repeat on every request
    _answers: Dict[str, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def from_regexes(cls, regexes: Sequence[str]) -> MaskingRules:
        return cls(tuple(re.compile(r, re.IGNORECASE) for r in regexes))

    @classmethod
    def default(cls) -> MaskingRules:
        return cls.from_regexes(DEFAULT_REGEXES)

    @classmethod
    def from_setting(cls, raw: Optional[str]) -> Tuple[MaskingRules, Optional[str]]:
        """Parse `LUMIGO_SECRET_MASKING_REGEX`; returns the rules and a warning, if any."""
        if raw is None or not raw.strip():
            return cls.default(), None
        try:
            value = json.loads(raw)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a JSON list of strings")
            return cls.from_regexes(value), None
        except (ValueError, re.error) as exc:
            return cls.default(), (
                f"LUMIGO_SECRET_MASKING_REGEX is invalid ({exc}); using the default rules"
            )

    def is_secret(self, key: str) -> bool:
        answers = self._answers
        answer = answers.get(key)
        if answer is None:
            answer = any(p.fullmatch(key) for p in self.patterns)
            if len(answers) >= _CACHE_SIZE:
                answers.clear()
            answers[key] = answer
        return answer

    def mask(self, value: Any) -> Any:
        """Return a copy of a JSON-like value with secret keys' values masked, at any depth."""
        if isinstance(value, dict):
            return {
                k: (MASKED if isinstance(k, str) and self.is_secret(k) else self.mask(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value

    def mask_json_text(self, text: str) -> str:
        """Mask a JSON document given as text; text that is not JSON is returned unchanged."""
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return text
        if not isinstance(parsed, (dict, list)):
            return text
        return json.dumps(self.mask(parsed), separators=(",", ":"), ensure_ascii=False)
