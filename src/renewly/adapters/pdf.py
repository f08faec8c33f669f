"""PDF/A-3 with Factur-X: WeasyPrint lays out the HTML, the `factur-x` library embeds the CII XML.

Nothing here reaches the network: the HTML names no remote resource (its stylesheet is inline,
its font one installed on the machine, DejaVu Sans), and WeasyPrint's URL fetcher allows no
protocol and stops at the first failure, so that a template edited to link a resource fails
instead of waiting on a server.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from weasyprint.text.fonts import FontConfiguration

# WeasyPrint and factur-x are imported by the functions that use them, not here: their import
# (Pango and HarfBuzz found and loaded, the XSD library) costs about half a second of CPU, which
# every `renewly` command that only imports the batches (`run`, `clock advance`, `worker`,
# `collect`) paid for PDFs it never made (bench/cli.py, docs/performance.md).

FACTURX_LEVEL = "en16931"

# The factur-x library logs every step at INFO (its XSD check's timing): not Renewly's to show.
logging.getLogger("factur-x").setLevel(logging.WARNING)


def pdf_a3(html: str) -> bytes:
    """The HTML as a PDF/A-3b document (the PDF/A variant that may carry attached files)."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols=(), fail_on_errors=True)
    return HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant="pdf/a-3b", font_config=_fonts())


@cache
def _fonts() -> FontConfiguration:
    # Fontconfig's view of the installed fonts, built once per process rather than per document.
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def with_facturx(pdf: bytes, xml: bytes, *, lang: str, metadata: Mapping[str, str]) -> bytes:
    """The PDF with its Factur-X XML embedded (factur-x.xml, AFRelationship Data) and the
    Factur-X XMP metadata, the XML checked against the schema first."""
    from facturx import generate_from_binary

    return generate_from_binary(pdf, xml, flavor="factur-x", level=FACTURX_LEVEL, check_xsd=True,
                                pdf_metadata=dict(metadata), lang=lang)
