"""Answers held to the OpenAPI document the server serves, for the tests that prepare a database:
schemathesis's generated requests (test_schemathesis.py) mostly meet an empty one, so that the
answers of an account in dunning, with a case, steps and banners, are checked here, each one a
test reads: its status declared for its operation, its media type, its body's schema."""

from __future__ import annotations

import schemathesis


class Documented:
    """A test client whose every answer is checked against the document before the test reads it."""

    def __init__(self, client) -> None:
        self.client = client
        self.document = client.get("/v1/openapi.json").json()
        self.schema = schemathesis.openapi.from_dict(self.document)

    def get(self, url: str, **kwargs):
        return self._checked(self.client.get(url, **kwargs))

    def post(self, url: str, **kwargs):
        return self._checked(self.client.post(url, **kwargs))

    def _checked(self, response):
        operation = self.schema.find_operation_by_path(response.request.method, response.request.url.path)
        assert operation is not None, f"no operation in the document for {response.request.url.path}"
        declared = self.document["paths"][operation.path][operation.method.lower()]["responses"]
        assert str(response.status_code) in declared, f"{response.status_code} is not declared: {response.text}"
        media_type = response.headers["content-type"].partition(";")[0]
        assert media_type in declared[str(response.status_code)]["content"], media_type
        operation.validate_response(response)  # the body, against the schema of its status
        return response
