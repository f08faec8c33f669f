from datetime import UTC, datetime
from email import message_from_bytes, policy

from renewly.adapters.mail.message import Attachment, Letter, as_bytes, message_id

LETTER = Letter(message_id=message_id(42, "seller.example"), written_at=datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
                sender="Billing <billing@seller.example>", recipients=("owner@buyer.example",),
                subject="Votre facture 2026-000123", text="Bonjour,\nvoici votre facture.\n", language="fr")


def test_the_message_id_is_fixed_by_the_outbox_row_and_the_bytes_by_the_letter():
    assert message_id(42, "seller.example") == "<renewly.outbox.42@seller.example>"
    assert as_bytes(LETTER) == as_bytes(LETTER)  # a resend is the same message
    assert b"\r\n" in as_bytes(LETTER) and b"\n" not in as_bytes(LETTER).replace(b"\r\n", b"")


def test_the_message_is_7_bit_whatever_the_language_so_any_server_takes_it():
    assert max(as_bytes(LETTER)) < 128
    read = message_from_bytes(as_bytes(LETTER), policy=policy.default)
    assert read["Subject"] == "Votre facture 2026-000123"
    assert read.get_content().replace("\r\n", "\n") == "Bonjour,\nvoici votre facture.\n"


def test_an_html_part_and_attachments_make_a_mixed_message_with_its_text_first():
    letter = Letter(**{**LETTER.__dict__, "html": "<p>Bonjour,</p>",
                       "attachments": (Attachment("2026-000123.pdf", b"%PDF-1.7 ...", "application/pdf"),),
                       "headers": (("List-Unsubscribe", "<https://seller.example/u/abc>"),)})
    read = message_from_bytes(as_bytes(letter), policy=policy.default)

    assert read.get_content_type() == "multipart/mixed"
    assert read["List-Unsubscribe"] == "<https://seller.example/u/abc>"
    assert read.get_body(("plain",)).get_content().startswith("Bonjour,")
    assert read.get_body(("html",)).get_content().startswith("<p>Bonjour,</p>")
    [pdf] = read.iter_attachments()
    assert (pdf.get_filename(), pdf.get_content_type(), pdf.get_content()) == (
        "2026-000123.pdf", "application/pdf", b"%PDF-1.7 ...")
