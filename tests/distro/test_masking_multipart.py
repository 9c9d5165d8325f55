"""Multipart form bodies: a user's narrow regex names the field, not the header line."""

from __future__ import annotations

from lumigo_opentelemetry.masking import MASKED, Masking, Site

BODY = (
    "--b\r\n"
    'Content-Disposition: form-data; name="password"\r\n'
    "\r\n"
    "hunter2\r\n"
    "--b\r\n"
    'Content-Disposition: form-data; name="user"\r\n'
    "\r\n"
    "alice\r\n"
    "--b--\r\n"
)
#: these tests are about what is masked, not about the time bound on user regexes
#: (test_masking_rules.py): a bound no loaded test machine reaches
ROOMY = 10.0


def test_a_narrow_user_regex_masks_the_multipart_field_it_names() -> None:
    masking, warnings = Masking.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX": '["password"]'}, time_bound=ROOMY
    )
    assert warnings == []
    text = masking.apply(Site.HTTP_REQUEST_BODIES, BODY, media_type="multipart/form-data")
    assert "hunter2" not in text and MASKED in text
    assert "alice" in text


def test_the_masked_body_keeps_its_parts_and_lines() -> None:
    """Only the secret field's value changes: boundaries, part headers, line endings and
    the other fields stay as the app sent them."""
    masking, _ = Masking.from_environ(
        {"LUMIGO_SECRET_MASKING_REGEX": '["password"]'}, time_bound=ROOMY
    )
    text = masking.apply(Site.HTTP_REQUEST_BODIES, BODY, media_type="multipart/form-data")
    assert text == BODY.replace("hunter2", MASKED)
