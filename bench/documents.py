"""The invoice documents benchmark (issue 12): PDFs rendered per second on one core, and cached
downloads per second, on PostgreSQL.

    .venv/bin/python bench/documents.py           # 60 invoices rendered, 3,000 cached downloads
    .venv/bin/python bench/documents.py --quick   # 20 invoices, 1,000 downloads
    .venv/bin/python bench/documents.py --tiny    # 3 invoices, 50 downloads: tests/test_benches.py

The process is pinned to one CPU. Invoices are issued through the real services (an account, a
plan, a subscription: its first invoice), half in French, half in English. Then:

1. first downloads: `document_of` renders each invoice (HTML template, WeasyPrint PDF/A-3b, the
   CII XML checked against the EN 16931 XSD and embedded by factur-x) and stores it. Target:
   >= 10 a second. The bound, measured in the same run on the same core: WeasyPrint alone
   laying out the same invoices' HTML as PDF/A-3b, without the XML, Factur-X or the database,
   which no invoice PDF can beat; `pdf_ratio` = invoice PDFs per second / that bound. (Also
   printed: `blank_pdfs_per_s`, a one-line page: WeasyPrint's floor on this machine.)
2. cached downloads: `invoice_pdf` as the owner's download calls it (the owner's check, the
   stored bytes, their SHA-256 checked), round robin over the invoices. Target: >= 500 a second.
   The bound: one SELECT of the stored bytes by key on the same engine, nothing else;
   `download_ratio` = downloads per second / that bound.

Wall time moves with whatever else shares the core; `pdf_cpu_ms` and `download_cpu_us` (this
process's CPU per PDF, per download; the PostgreSQL backend's not counted) hardly do.

Every result is checked (each PDF carries a Factur-X XML whose total is the invoice's; a cached
download is the stored PDF, byte for byte); a wrong one exits non-zero. The last line is
key=value pairs, for scripts.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from facturx import get_facturx_xml_from_pdf
from lxml import etree
from sqlalchemy import select

from renewly.accounts.accounts import create_account
from renewly.adapters.db.tables import invoice_documents, invoices
from renewly.adapters.pdf import pdf_a3
from renewly.billing.documents import document_of, frozen_document, invoice_pdf, render_document, render_html
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import bootstrap

sys.path.insert(0, str(Path(__file__).parent))
from renewal import bench_database, bench_settings, format_figure  # noqa: E402

ACTOR = "bench:documents"
START = datetime(2026, 1, 1, tzinfo=UTC)
GRAND_TOTAL = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}GrandTotalAmount"
BLANK_PAGE = '<html><body style="font-family: \'DejaVu Sans\'">Invoice 2026-000001</body></html>'
SIZES = {"full": (60, 3000), "quick": (20, 1000), "tiny": (3, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--postgres-url", default=os.environ.get("RENEWLY_TEST_POSTGRES_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    count, downloads = SIZES["tiny" if args.tiny else "quick" if args.quick else "full"]
    cpu = one_core()

    with bench_database(args.postgres_url) as url:
        app = bootstrap(bench_settings(database_url=url, clock="test"), upgrade=False)
        app.test_clock.set(START)
        try:
            numbers = issue(app, count)
            with app.engine.connect() as conn:
                issued = {row.number: row for row in conn.execute(select(invoices.c.id, invoices.c.number,
                                                                         invoices.c.account_id, invoices.c.total))}

            blank_pdfs = rate(lambda: pdf_a3(BLANK_PAGE), max(count, 5))
            with app.engine.connect() as conn:
                pages = [render_html(frozen_document(conn, issued[number].id)) for number in numbers]
                render_document(frozen_document(conn, issued[numbers[0]].id))  # warmed as the bound is
            page = iter(range(10**9))
            bound_pdfs = rate(lambda: pdf_a3(pages[next(page) % count]), count)
            started, started_cpu = time.perf_counter(), time.process_time()
            rendered = {number: document_of(app, issued[number].id) for number in numbers}
            pdf_seconds, pdf_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            for number, pdf in rendered.items():
                check_pdf(number, pdf, issued[number].total)

            owners = {number: f"owner{issued[number].account_id}@bench.example" for number in numbers}
            order = [numbers[index % count] for index in range(downloads)]
            started, started_cpu = time.perf_counter(), time.process_time()
            served = [invoice_pdf(app, number, acting_email=owners[number]) for number in order]
            download_seconds, download_cpu = time.perf_counter() - started, time.process_time() - started_cpu
            for number, pdf in zip(order, served):
                if pdf != rendered[number]:
                    sys.exit(f"bench: the cached download of {number} is not the stored PDF")
            ids = [issued[number].id for number in order]

            def bare_select(index=iter(range(10**9))):
                with app.engine.connect() as conn:
                    return conn.execute(select(invoice_documents.c.content)
                                        .where(invoice_documents.c.invoice_id == ids[next(index) % len(ids)])).scalar()

            bound_downloads = rate(bare_select, downloads)
        finally:
            app.engine.dispose()

    pdfs_per_s = count / pdf_seconds
    downloads_per_s = downloads / download_seconds
    figures = {
        "invoices": count, "cpu": cpu, "invoice_pdfs_per_s": pdfs_per_s, "pdf_cpu_ms": 1000 * pdf_cpu / count,
        "bound_pdfs_per_s": bound_pdfs, "pdf_ratio": pdfs_per_s / bound_pdfs, "blank_pdfs_per_s": blank_pdfs,
        "pdf_kb": sum(len(pdf) for pdf in rendered.values()) / count / 1024,
        "downloads": downloads, "downloads_per_s": downloads_per_s, "bound_downloads_per_s": bound_downloads,
        "download_ratio": downloads_per_s / bound_downloads, "download_cpu_us": 1e6 * download_cpu / downloads,
    }
    print(f"{count} invoice PDFs rendered at {pdfs_per_s:.1f}/s on CPU {cpu} (target >= 10;\n"
          f"  WeasyPrint alone on the same pages {bound_pdfs:.1f}/s)\n"
          f"{downloads} cached downloads at {downloads_per_s:.0f}/s (target >= 500; a bare SELECT "
          f"{bound_downloads:.0f}/s)")
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))


def one_core() -> int:
    """Pin this process to one CPU (the last it may use): the figures are one core's."""
    allowed = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {allowed[-1]})
    return allowed[-1]


def issue(app, count: int) -> list[str]:
    """`count` accounts, each subscribed to one plan: each subscription issues its first invoice."""
    for currency in ("EUR", "USD"):
        create_plan(app, code=f"team-{currency.lower()}", name="Team", interval="month", price=1900,
                    currency=currency, actor=ACTOR)
    for n in range(1, count + 1):
        currency, locale = ("EUR", "fr") if n % 2 else ("USD", "en")
        account_id = create_account(app, name=f"Customer {n} SAS", owner_email=f"owner{n}@bench.example",
                                    currency=currency, country="FR", locale=locale, timezone="Europe/Paris",
                                    actor=ACTOR)
        create_subscription(app, account_id, plan_code=f"team-{currency.lower()}", seats=1 + n % 9, actor=ACTOR)
    with app.engine.connect() as conn:
        return list(conn.execute(select(invoices.c.number).order_by(invoices.c.id)).scalars())


def check_pdf(number: str, pdf: bytes, total: int) -> None:
    _, xml = get_facturx_xml_from_pdf(pdf, check_xsd=True)
    found = Decimal(etree.fromstring(xml).findtext(f".//{GRAND_TOTAL}"))
    if not pdf.startswith(b"%PDF-") or found != Decimal(total) / 100:
        sys.exit(f"bench: the PDF of {number} says a total of {found}, the invoice {Decimal(total) / 100}")


def rate(call, times: int) -> float:
    """Calls per second of `call`, after one call to warm it up."""
    call()
    started = time.perf_counter()
    for _ in range(times):
        call()
    return times / (time.perf_counter() - started)


if __name__ == "__main__":
    main()
