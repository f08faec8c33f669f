"""One cursor for every list: pages in increasing id, `has_more` and an opaque `next_cursor`."""

from __future__ import annotations

import pytest

from renewly.web.pagination import decode, encode
from tests.builders import team_plan
from tests.web.conftest import problem


def test_a_list_walks_page_by_page_to_its_end(app, client):
    for index in range(5):
        team_plan(app, code=f"plan-{index}")
    seen, cursor, pages = [], None, 0
    while True:
        page = client.get("/v1/plans", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        pages += 1
        seen += [plan["code"] for plan in page["data"]]
        assert page["object"] == "list" and page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert (seen, pages) == ([f"plan-{index}" for index in range(5)], 3)


def test_rows_added_meanwhile_come_last_and_nothing_is_seen_twice(app, client):
    team_plan(app, code="a")
    team_plan(app, code="b")
    first = client.get("/v1/plans", params={"limit": 1}).json()
    team_plan(app, code="c")
    rest = client.get("/v1/plans", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [plan["code"] for plan in first["data"] + rest["data"]] == ["a", "b", "c"]
    assert rest == {**rest, "has_more": False, "next_cursor": None}


def test_an_empty_list(client):
    assert client.get("/v1/plans").json() == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


@pytest.mark.parametrize("limit", [0, 101, -1, "ten"])
def test_a_limit_out_of_bounds_is_refused_with_its_field(client, limit):
    body = problem(client.get("/v1/plans", params={"limit": limit}), 422, "invalid_input")
    assert [error["field"] for error in body["errors"]] == ["query.limit"]


@pytest.mark.parametrize("cursor", ["abc", encode(-1), "eyJhZnRlciI6ICJ4In0=", "W10=", encode(2**53)])
def test_a_cursor_this_api_did_not_give_is_refused(client, cursor):
    problem(client.get("/v1/plans", params={"cursor": cursor}), 400, "invalid_cursor")


def test_a_cursor_says_where_the_page_before_ended():
    assert decode(encode(42)) == 42
