"""`Idempotency-Key` on a POST: the first request with a key runs; the same request sent again
with that key gets the first one's answer, replayed (status and body, with `Idempotent-Replayed:
true`), for 24 hours; the key with another request (another path or body) is refused, 409
`idempotency_key_reused`. Keys belong to the API key that sent them.

Two requests with one key at once: the first one written runs; the other waits for its answer
(up to WAIT_FOR_THE_FIRST, polling) and replays it; if the first is still running by then, the
other is refused, 409 `idempotency_key_in_progress` with `Retry-After`, and may simply try again.
The first one holds the key under a wall-clock lease (LEASE), renewed every third of it while
the request runs (a test-clock advance of years takes minutes): only a process that died while
running it leaves the key, to the next try once the lease ends.

Only answers below 500 are kept: a 4xx says what the request was worth when it came (an unknown
account stays refused on a replay, as Stripe does); after a 500 or a 503 nothing was changed
(every use case is one transaction), and the key is released for the client's retry. An answer
is kept after the use case's own transaction: a crash between the two leaves the key running
until its lease ends, and the retry runs the request again.

Times here are the wall clock's, not the (test) clock billing runs on: a client's retry comes
seconds later in real time, whatever a test clock did meanwhile (the same as the leases of the
payment and mail batches). Rows older than 24 hours count as gone, and are purged a slice at a
time as new keys are written.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta

import anyio
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renewly.accounts.rules.members import AccountStatus
from renewly.adapters.clock import wall_clock
from renewly.adapters.db.locks import claim_unheld, hold_until_commit
from renewly.adapters.db.tables import accounts, idempotency_keys
from renewly.payments.rules.card_numbers import withhold_card_numbers
from renewly.ports import Ports
from renewly.web.authentication import SCOPE_KEY, for_the_portal
from renewly.web.fields import LARGEST_ID
from renewly.web.problems import problem_response

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LENGTH = 255  # idempotency_keys.key
KEPT = timedelta(hours=24)
LEASE = timedelta(minutes=5)
WAIT_FOR_THE_FIRST = 10.0  # seconds a duplicate waits for the first request's answer
POLL_EVERY = 0.05
PURGED_PER_WRITE = 500  # expired rows deleted with each new key: a backlog goes a slice at a time
LARGEST_BODY = 1_048_576  # bytes: no request of this API needs more


@dataclass(frozen=True)
class Run:
    """The key is this request's: run it, then `finish` or `release` the row."""

    row_id: int


@dataclass(frozen=True)
class Replay:
    status: int
    media_type: str
    body: bytes


class Reused:
    """The key came with another request."""


class InProgress:
    """The first request with this key is still running."""


Reservation = Run | Replay | Reused | InProgress


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same: method, path, query and body; a JSON body by its
    content, so that the order of its keys or its spacing does not make another request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body.decode("utf-8", "surrogateescape")
    # R5.4: a card number sent by mistake is refused, and not kept even as part of a hash (a
    # card number's few unknown digits are found again from an unsalted SHA-256 by trying them all).
    canonical_bytes = withhold_card_numbers(canonical).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query, canonical_bytes):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def reserve(app: Ports, api_key_id: int, key: str, request_fingerprint: str) -> Reservation:
    for _ in range(2):  # an INSERT that lost to another one at once: read what it wrote
        try:
            return _reserve(app, api_key_id, key, request_fingerprint)
        except IntegrityError:
            continue
    return InProgress()


def _reserve(app: Ports, api_key_id: int, key: str, request_fingerprint: str) -> Reservation:
    now = wall_clock()
    with app.engine.begin() as conn:
        row = conn.execute(hold_until_commit(select(idempotency_keys).where(
            idempotency_keys.c.api_key_id == api_key_id, idempotency_keys.c.key == key), conn)).first()
        if row is not None and row.created_at <= now - KEPT:
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row.id))
            row = None
        if row is None:
            _purge_expired(conn, now)
            row_id = conn.execute(idempotency_keys.insert().values(
                api_key_id=api_key_id, key=key, fingerprint=request_fingerprint, status="running",
                locked_until=now + LEASE, created_at=now).returning(idempotency_keys.c.id)).scalar_one()
            return Run(row_id)
        if row.fingerprint != request_fingerprint:
            return Reused()
        if row.status == "done":
            return Replay(row.response_status, row.response_type, row.response_body)
        if row.locked_until is not None and row.locked_until > now:
            return InProgress()
        # The first one's process died (its lease ended): this request runs in its place.
        conn.execute(idempotency_keys.update().where(idempotency_keys.c.id == row.id)
                     .values(locked_until=now + LEASE))
        return Run(row.id)


def _purge_expired(conn, now) -> None:
    expired = claim_unheld(select(idempotency_keys.c.id).where(idempotency_keys.c.created_at <= now - KEPT)
                           .order_by(idempotency_keys.c.created_at).limit(PURGED_PER_WRITE), conn)
    ids = conn.execute(expired).scalars().all()
    if ids:
        conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id.in_(ids)))


def extend(app: Ports, row_id: int) -> None:
    """The request still runs: its lease goes on (a live process never loses its key)."""
    with app.engine.begin() as conn:
        conn.execute(idempotency_keys.update().where(idempotency_keys.c.id == row_id,
                                                     idempotency_keys.c.status == "running")
                     .values(locked_until=wall_clock() + LEASE))


def finish(app: Ports, row_id: int, status: int, media_type: str, body: bytes, account_id: int | None) -> None:
    """Keep the answer for replays, under the account it is about; not if that account's data
    was deleted meanwhile (R10.1): the key is released instead. The account's row is held to the
    commit, so that a deletion at the same moment comes wholly before (this sees it) or after
    (it deletes this row: renewly.retention.deletion)."""
    with app.engine.begin() as conn:
        if account_id is not None:
            status_of_account = conn.execute(hold_until_commit(
                select(accounts.c.status).where(accounts.c.id == account_id), conn)).scalar()
            if status_of_account == AccountStatus.DELETED.value:
                conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row_id))
                return
        conn.execute(idempotency_keys.update().where(idempotency_keys.c.id == row_id,
                                                     idempotency_keys.c.status == "running")
                     .values(status="done", locked_until=None, response_status=status,
                             response_type=media_type[:100], response_body=body, account_id=account_id))


def account_of(path_params: dict[str, object], body: bytes) -> int | None:
    """The account an answer is about: the route's `{account_id}`, or the one the answer names
    (an account's `id`, or `account_id` at its top level or in its `subscription`); None for an
    answer about no account. tests/web/test_idempotency.py holds every POST route to one of these."""
    if "account_id" in path_params:
        return _an_id(path_params["account_id"])
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    if answer.get("object") == "account":
        return _an_id(answer.get("id"))
    subscription = answer.get("subscription")
    if "account_id" not in answer and isinstance(subscription, dict):
        answer = subscription
    return _an_id(answer.get("account_id"))


def _an_id(value: object) -> int | None:
    """An account id as the API takes one (web/fields.py); anything else (a path's id the route
    refused: too large for the database, not a number) names no account."""
    try:
        found = int(value) if isinstance(value, int | str) and not isinstance(value, bool) else None
    except ValueError:
        return None
    return found if found is not None and 1 <= found <= LARGEST_ID else None


def release(app: Ports, row_id: int) -> None:
    with app.engine.begin() as conn:
        conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row_id,
                                                    idempotency_keys.c.status == "running"))


def valid_key(key: str) -> bool:
    """Printable ASCII, 1 to 255 characters (a UUID is the usual choice)."""
    return 0 < len(key) <= KEY_LENGTH and all(" " <= char <= "~" for char in key)


class Idempotency:
    """The ASGI middleware: below the authentication (it needs the API key), above the routes.
    It also bounds every request's body (LARGEST_BODY, 413), since it reads them whole."""

    def __init__(self, app: ASGIApp, ports: Ports) -> None:
        self.app, self.ports = app, ports

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH") or for_the_portal(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            await problem_response(413, "request_too_large", f"a request's body is at most {LARGEST_BODY} bytes")(
                scope, receive, send)
            return
        replay_body = _replaying(body, receive)
        key = _header(scope, HEADER)
        api_key = scope.get(SCOPE_KEY)
        if key is None or scope["method"] != "POST" or api_key is None:
            await self.app(scope, replay_body, send)
            return
        if not valid_key(key):
            await problem_response(400, "invalid_idempotency_key", "an Idempotency-Key is 1 to 255 printable ASCII "
                                   "characters (a UUID is the usual choice)")(scope, receive, send)
            return
        request_fingerprint = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        outcome = await self._reserve_or_wait(api_key.id, key, request_fingerprint)
        if isinstance(outcome, Replay):
            await _replay(outcome, send)
        elif isinstance(outcome, Reused):
            await problem_response(409, "idempotency_key_reused", "this Idempotency-Key was used with another "
                                   "request (path or body) in the last 24 hours; use a new key for a new request")(
                scope, receive, send)
        elif isinstance(outcome, InProgress):
            await problem_response(409, "idempotency_key_in_progress", "a request with this Idempotency-Key is "
                                   "still running; try again in a moment", headers={"Retry-After": "1"})(
                scope, receive, send)
        else:
            await self._run(outcome, scope, replay_body, send)

    async def _reserve_or_wait(self, api_key_id: int, key: str, request_fingerprint: str) -> Reservation:
        deadline = time.monotonic() + WAIT_FOR_THE_FIRST
        while True:
            outcome = await anyio.to_thread.run_sync(reserve, self.ports, api_key_id, key, request_fingerprint)
            if not isinstance(outcome, InProgress) or time.monotonic() >= deadline:
                return outcome
            await anyio.sleep(POLL_EVERY)

    async def _run(self, run: Run, scope: Scope, receive: Receive, send: Send) -> None:
        answer: dict[str, object] = {"status": 500, "media_type": "", "body": b""}
        chunks: list[bytes] = []

        async def keeping(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["media_type"] = next((value.decode("latin-1") for name, value in message.get("headers", [])
                                             if name.lower() == b"content-type"), "")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        async def keeping_the_lease() -> None:
            while True:
                await anyio.sleep(LEASE.total_seconds() / 3)
                await anyio.to_thread.run_sync(extend, self.ports, run.row_id)

        failed: Exception | None = None
        async with anyio.create_task_group() as lease:
            lease.start_soon(keeping_the_lease)
            try:
                await self.app(scope, receive, keeping)
            except Exception as error:  # raised again once the key is released
                failed = error
            finally:
                lease.cancel_scope.cancel()
        if failed is not None:
            await anyio.to_thread.run_sync(release, self.ports, run.row_id)
            raise failed
        status = answer["status"]
        assert isinstance(status, int)
        if status >= 500:
            await anyio.to_thread.run_sync(release, self.ports, run.row_id)
        else:
            body = b"".join(chunks)
            await anyio.to_thread.run_sync(finish, self.ports, run.row_id, status, str(answer["media_type"]), body,
                                           account_of(scope.get("path_params", {}), body))


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body, or None past LARGEST_BODY."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > LARGEST_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the connection says (a disconnect)."""
    given = False

    async def replaying() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


async def _replay(replay: Replay, send: Send) -> None:
    headers = [(b"content-type", replay.media_type.encode("latin-1")),
               (b"content-length", str(len(replay.body)).encode()), (REPLAYED_HEADER.lower().encode(), b"true")]
    await send({"type": "http.response.start", "status": replay.status, "headers": headers})
    await send({"type": "http.response.body", "body": replay.body})


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None
