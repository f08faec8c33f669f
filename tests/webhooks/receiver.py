"""A real HTTP server on loopback that receives webhooks: it keeps every request (its path,
headers and body, and what it answered) and answers as a test tells it: 2xx; or, seeded, a share
of failures: a 5xx, a reply later than the sender waits (a timeout), a connection dropped before
any reply. A request it failed may still have been read (the timeout's, the drop's): as for a
real receiver, the sender cannot know, and sends it again."""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OK, SERVER_ERROR, SLOW, DROP = "ok", "5xx", "slow", "drop"


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answer: str  # OK, SERVER_ERROR, SLOW or DROP

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """`failures`: the share of requests answered by a failure (5xx, slow, dropped in equal
    parts), drawn from `seed`; `answers`: the answers of the next requests, before the draw.
    `slow_seconds`: how late a slow reply comes (more than the sender's timeout)."""

    def __init__(self, *, failures: float = 0.0, seed: int = 0, slow_seconds: float = 1.0) -> None:
        self.failures, self.slow_seconds = failures, slow_seconds
        self.answers: list[str] = []
        self.requests: list[Request] = []
        self._draw = random.Random(seed)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                answer = receiver._answer()
                with receiver._lock:
                    receiver.requests.append(Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                     body, answer))
                if answer == DROP:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if answer == SLOW:
                    time.sleep(receiver.slow_seconds)
                status, text = (503, b"busy, try later") if answer == SERVER_ERROR else (200, b'{"received":true}')
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass  # the sender gave up waiting (SLOW)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # socketserver's 5 would leave a sender's parallel connections waiting

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def _answer(self) -> str:
        with self._lock:
            if self.answers:
                return self.answers.pop(0)
            if self._draw.random() >= self.failures:
                return OK
            return self._draw.choice((SERVER_ERROR, SLOW, DROP))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if path is None or request.path == path]
