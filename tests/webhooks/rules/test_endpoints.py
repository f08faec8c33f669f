"""Which endpoints may be registered: http(s) URLs only, checked at the door."""

import pytest

from renewly.shared.errors import InvalidInput
from renewly.webhooks.rules.endpoints import URL_LENGTH, validate_description, validate_url


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
