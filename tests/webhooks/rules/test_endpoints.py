"""Which endpoints may be registered: http(s) URLs only, checked at the door."""

from datetime import UTC, datetime, timedelta

import pytest

from renewly.shared.errors import InvalidInput
from renewly.webhooks.rules.endpoints import (
    URL_LENGTH,
    previous_secret_until,
    signing_secrets,
    validate_description,
    validate_overlap_hours,
    validate_url,
)

NOON = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("url", [
    "https://host.example/webhooks/renewly", "http://127.0.0.1:8080/hook?source=renewly", "HTTPS://Host.Example",
    "https://[::1]:9000/h", " https://padded.example/ "])
def test_an_http_or_https_url_with_a_host_is_accepted(url):
    assert validate_url(url) == url.strip()


@pytest.mark.parametrize(("url", "said"), [
    ("", "needs a URL"), ("ftp://files.example/x", "http:// or https:// only"),
    ("file:///etc/passwd", "http:// or https:// only"), ("javascript:alert(1)", "http:// or https:// only"),
    ("host.example/hook", "http:// or https:// only"), ("https:///no-host", "names no host"),
    ("https://user:pass@host.example/", "user or password"), ("https://host.example/#part", "fragment"),
    ("https://host.example:99999/", "not a URL"), ("https://host.example/a b", "not a URL"),
    ("https://host.example/\x1b[2J", "not a URL"), ("https://hôte.example/", "not a URL"),
    ("https://host.example/" + "x" * URL_LENGTH, "at most 2000")])
def test_anything_else_is_refused_with_the_reason(url, said):
    with pytest.raises(InvalidInput) as refused:
        validate_url(url)
    assert said in refused.value.message and refused.value.code == "invalid_url"


def test_a_description_is_optional_printable_and_bounded():
    assert validate_description(None) == "" and validate_description(" prod ") == "prod"
    for bad in ("two\nlines", "x" * 501):
        with pytest.raises(InvalidInput):
            validate_description(bad)


def test_a_rotated_secret_s_predecessor_signs_beside_it_until_the_overlap_ends():
    until = previous_secret_until(NOON, 24)
    assert until == NOON + timedelta(hours=24)
    assert signing_secrets("whsec_new", "whsec_old", until, NOON) == ["whsec_new", "whsec_old"]
    assert signing_secrets("whsec_new", "whsec_old", until, until - timedelta(seconds=1)) == ["whsec_new", "whsec_old"]
    assert signing_secrets("whsec_new", "whsec_old", until, until) == ["whsec_new"]
    assert signing_secrets("whsec_new", None, None, NOON) == ["whsec_new"]


def test_an_overlap_of_zero_hours_ends_the_old_secret_at_once():
    assert previous_secret_until(NOON, 0) is None


@pytest.mark.parametrize("hours", [-1, 169, 10**20, True, 1.5])
def test_an_overlap_outside_zero_to_a_week_is_refused(hours):
    with pytest.raises(InvalidInput, match="0 to 168 hours"):
        validate_overlap_hours(hours)
