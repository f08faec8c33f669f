"""The wire of webhooks: a message signed per Standard Webhooks, POSTed over HTTP(S).

`sign` gives the three headers of the spec with the `standardwebhooks` library (the one a
receiver verifies with): `webhook-id`, `webhook-timestamp` (when it is sent, on the wall clock:
receivers refuse a timestamp more than five minutes off theirs, whatever clock billing runs on)
and `webhook-signature` (`v1,` and the HMAC-SHA256 of `id.timestamp.body`, keyed by the
endpoint's `whsec_` secret). `post_all` sends a slice's POSTs at once with httpx: at most
`concurrency` in flight, each given `timeout` seconds from connecting to the end of what it
reads of the response, redirects not followed (a 3xx is not delivery), proxies from the
environment (HTTPS_PROXY, NO_PROXY) honoured.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from base64 import b64encode
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version

import httpx
from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    """A new endpoint's signing secret: `whsec_` and 32 random bytes in base64 (the spec's form)."""
    return SECRET_PREFIX + b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign(secret: str | Sequence[str], webhook_id: str, body: str, sent_at: datetime | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of `body` sent now (or at `sent_at`). Several secrets (a
    rotation's new one and its predecessor): one signature each, separated by a space, as the spec
    allows; the receiver accepts the message if one of them verifies with the secret it holds."""
    at = (sent_at or datetime.now(UTC)).replace(microsecond=0)
    keys = [secret] if isinstance(secret, str) else list(secret)
    return {"webhook-id": webhook_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(Webhook(key).sign(webhook_id, at, body) for key in keys)}


@dataclass(frozen=True)
class Post:
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """What a POST came to: the status (None: no response, `error` says why), its time in
    milliseconds, and the start of the response's text (at most `excerpt_bytes` read)."""

    status: int | None
    error: str | None
    latency_ms: int
    text: str


def post_all(posts: Sequence[Post], *, concurrency: int, timeout: float, excerpt_bytes: int) -> list[Reply]:
    """Each POST's reply, in the posts' order."""
    if not posts:
        return []
    work = _post_all(posts, concurrency, timeout, excerpt_bytes)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from a running event loop's thread (a web server's): run in a thread of its own.
    with ThreadPoolExecutor(1, thread_name_prefix="webhooks") as thread:
        return thread.submit(asyncio.run, work).result()


USER_AGENT = f"Renewly-Webhooks/{version('renewly')}"


async def _post_all(posts: Sequence[Post], concurrency: int, timeout: float, excerpt_bytes: int) -> list[Reply]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits, follow_redirects=False,
                                 headers={"user-agent": USER_AGENT, "content-type": "application/json"}) as client:

        async def one(post: Post) -> Reply:
            async with gate:
                started = time.perf_counter()  # a duration, not a date

                def took() -> int:
                    return round((time.perf_counter() - started) * 1000)

                try:
                    # The whole exchange within `timeout`: httpx's own bounds each read, not the sum
                    # (a server dripping a byte a second would hold the slice for ever).
                    status, text = await asyncio.wait_for(_exchange(client, post, excerpt_bytes), timeout)
                except TimeoutError:
                    return Reply(None, f"timed out after {timeout:g} s", took(), "")
                except httpx.TimeoutException:
                    return Reply(None, f"timed out after {timeout:g} s", took(), "")
                except httpx.HTTPError as error:
                    return Reply(None, _said(error), took(), "")
                return Reply(status, None, took(), text)

        return list(await asyncio.gather(*(one(post) for post in posts)))


async def _exchange(client: httpx.AsyncClient, post: Post, excerpt_bytes: int) -> tuple[int, str]:
    async with client.stream("POST", post.url, content=post.body, headers=post.headers) as response:
        start = bytearray()
        async for chunk in response.aiter_bytes():
            start += chunk
            if len(start) >= excerpt_bytes:
                break  # the rest is never read: the connection is closed, not reused
        return response.status_code, start[:excerpt_bytes].decode("utf-8", "replace")


def _said(error: httpx.HTTPError) -> str:
    """One line on what went wrong: the kind of failure and the system's words."""
    kind = {httpx.ConnectError: "connection failed", httpx.RemoteProtocolError: "connection dropped",
            httpx.ReadError: "connection dropped", httpx.WriteError: "connection dropped"}
    name = next((said for cls, said in kind.items() if isinstance(error, cls)), type(error).__name__)
    detail = " ".join(str(error).split())
    return f"{name}: {detail}" if detail else name
