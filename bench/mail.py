"""The e-mail delivery benchmark (issue 12, the e-mail part of bench/documents.py): e-mails per
second delivered from the outbox to a local SMTP sink that answers each e-mail after 20 ms.

    .venv/bin/python bench/mail.py                          # 5,000 e-mails, 8 SMTP connections
    .venv/bin/python bench/mail.py --emails 20000 --connections 4
    .venv/bin/python bench/mail.py --tiny                   # 200 e-mails: tests/test_benches.py

It starts the sink, an aiosmtpd server on loopback in a process of its own (so that it does not
share this one's interpreter lock), which waits `--latency-ms` before its reply to each e-mail's
data, as a relay that writes to disk and scans does. It creates a database of its own on the
server of --postgres-url, writes N e-mails into the outbox with the outbox writer, and runs the
mail batch (`renewly.mail.delivery.deliver_due`, the code `renewly mail send` and the worker
run) with `--connections` SMTP connections. It checks the result: every row delivered, and the
sink received N e-mails, each Message-ID once.

The bound, measured in the same run against the same sink: the same N messages, built ahead,
sent through the same SMTP transport in slices of the same size, without a database: what
delivery could reach if claiming, building and marking cost nothing. The ratio is e-mails/s
over bound/s. The last line is key=value pairs, for scripts. Target: >= 200 e-mails/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.tables import outbox
from renewly.adapters.mail.smtp import SmtpTransport
from renewly.bootstrap import bootstrap
from renewly.mail.delivery import deliver_due
from renewly.mail.letters import envelope_of, letter_of
from renewly.outbox import writer

sys.path.insert(0, str(Path(__file__).parent))
from renewal import bench_database, bench_settings  # noqa: E402  (a database of its own, as bench/renewal.py)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections in parallel (mail.connections)")
    parser.add_argument("--latency-ms", type=float, default=20, help="the sink's wait before each reply to the data")
    parser.add_argument("--slice-size", type=int, default=200, help="e-mails per slice (mail.slice_size)")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its result, not a measure: 200 e-mails")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop databases")
    parser.add_argument("--sink", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the sink's own process
    args = parser.parse_args()
    if args.sink:
        serve_sink(args.sink, args.latency_ms / 1000)
        return
    count = 200 if args.tiny else args.emails

    with Sink(args.latency_ms) as sink, bench_database(args.postgres_url) as url:
        mail = {"host": "127.0.0.1", "port": sink.port, "security": "none",
                "from_address": "Billing <billing@seller.example>", "connections": args.connections,
                "slice_size": args.slice_size, "timeout_seconds": 30}
        # On the system clock delivery needs what the removal links of contacts' e-mails are made of.
        settings = bench_settings(database_url=url, mail=mail, secret_key="bench-" + "k" * 32,
                                  public_url="https://billing.bench.example")
        app = bootstrap(settings, clock=SystemClock(), upgrade=False)
        try:
            write_emails(app, count)
            started = time.perf_counter()
            report = deliver_due(app, app.clock.now())
            seconds = time.perf_counter() - started
            received = sink.received()
            check(app, report, received, count)
            print(f"delivery: {count:,} e-mails in {seconds:.2f} s ({count / seconds:,.0f}/s), "
                  f"{args.connections} connections, sink latency {args.latency_ms:g} ms")

            bound_seconds = measure_bound(app, count)
            bound_received = sink.received()
            if len(bound_received) != count or max(bound_received.values()) != 1:
                sys.exit(f"bench: the bound's {count} e-mails did not all arrive once")
            print(f"bound: the same e-mails through the same transport, no database:\n"
                  f"  {bound_seconds:.2f} s ({count / bound_seconds:,.0f}/s)")
        finally:
            app.engine.dispose()

    per_s, bound_per_s = count / seconds, count / bound_seconds
    figures = {"emails": count, "connections": args.connections, "latency_ms": args.latency_ms,
               "emails_per_s": per_s, "bound_per_s": bound_per_s, "ratio": per_s / bound_per_s,
               "seconds": seconds}
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))


def write_emails(app, count: int) -> None:
    now = app.clock.now()
    with app.engine.begin() as conn:
        writer.write_many(conn, (
            writer.email(now, 1 + n % 1000, kind="payment_failed_1", locale="fr" if n % 2 else "en",
                         recipients=[f"owner{n}@buyer{n % 50}.example"], subject=f"Votre paiement a échoué ({n})",
                         body="Bonjour,\n\nLe paiement de votre facture 2026-000123 a échoué.\n" * 4,
                         html="<p>Le paiement de votre facture 2026-000123 a échoué.</p>\n" * 4)
            for n in range(count)))


def check(app, report, received: Counter, count: int) -> None:
    with app.engine.connect() as conn:
        delivered = conn.execute(select(func.count()).select_from(outbox)
                                 .where(outbox.c.delivered_at.is_not(None))).scalar_one()
    if (report.delivered, report.to_retry, report.failed, delivered) != (count, 0, 0, count):
        sys.exit(f"bench: {count} e-mails, yet {report.describe()}; {delivered} rows delivered")
    if len(received) != count or max(received.values()) != 1:
        sys.exit(f"bench: the sink received {sum(received.values())} e-mails, {len(received)} distinct")


def measure_bound(app, count: int) -> float:
    """The same messages, built ahead, through the same transport and slices, no database."""
    with app.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.id, outbox.c.created_at, outbox.c.payload)
                            .where(outbox.c.topic == "email").order_by(outbox.c.id)).all()
    settings = app.settings.mail
    envelopes = [envelope_of(letter_of(row, settings, app.settings.seller)) for row in rows]
    size = settings.slice_size
    with SmtpTransport(settings).session() as session:
        started = time.perf_counter()
        for first in range(0, len(envelopes), size):
            answers = session.send(envelopes[first:first + size])
            if any(answer.code != 250 for answer in answers):
                sys.exit("bench: the sink refused an e-mail of the bound")
        return time.perf_counter() - started


class Sink:
    """The sink's process: `received()` asks it what it got since the last time."""

    def __init__(self, latency_ms: float) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.latency_ms = latency_ms

    def __enter__(self) -> Sink:
        self.process = subprocess.Popen([sys.executable, __file__, "--sink", str(self.port),
                                         "--latency-ms", str(self.latency_ms)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            sys.exit("bench: the SMTP sink did not start")
        return self

    def received(self) -> Counter:
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        return Counter(json.loads(self.process.stdout.readline()))

    def __exit__(self, *_exc) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def serve_sink(port: int, latency: float) -> None:
    """aiosmtpd on 127.0.0.1:PORT; each line on stdin asks for the Message-IDs received since the
    last one (printed as one JSON line); end of input stops it."""
    from aiosmtpd.controller import Controller

    received: Counter = Counter()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            await asyncio.sleep(latency)
            content = envelope.content
            start = content.index(b"Message-ID: ") + 12
            received[content[start:content.index(b"\r\n", start)].decode()] += 1
            return "250 2.0.0 queued"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        for _line in sys.stdin:
            print(json.dumps(dict(received)), flush=True)
            received.clear()
    finally:
        controller.stop()


def format_figure(value: float | int) -> str:
    if isinstance(value, int) or value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


if __name__ == "__main__":
    main()
