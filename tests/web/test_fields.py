"""The limits checked at the door are the ones the OpenAPI document states, the same on both
engines: every integer a request sends has its bounds there, every string its length."""

from __future__ import annotations


def properties(document):
    for name, schema in document["components"]["schemas"].items():
        if name.endswith("In"):  # what requests send
            for field, property_ in schema.get("properties", {}).items():
                yield f"{name}.{field}", property_


def test_every_integer_and_string_a_request_sends_states_its_bounds(anonymous):
    document = anonymous.get("/v1/openapi.json").json()
    assert '"ge"' not in str(document).replace("'", '"') and '"le"' not in str(document).replace("'", '"')
    checked = 0
    for where, property_ in properties(document):
        for variant in property_.get("anyOf", [property_]):
            if variant.get("type") == "integer":
                assert {"minimum", "maximum"} <= variant.keys(), where
                checked += 1
            if variant.get("type") == "string":
                assert {"maxLength"} <= variant.keys() or {"enum"} & variant.keys() or "pattern" in variant or \
                    variant.get("format") == "date", where
                checked += 1
    assert checked >= 20
