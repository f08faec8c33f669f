"""`renewly invoices pdf NUMBER -o FILE --as EMAIL`: the owner's download (R2.2)."""

from __future__ import annotations

import pytest

from renewly.accounts.accounts import add_member
from tests.builders import OPERATOR, subscribed


@pytest.fixture
def invoiced(app) -> int:
    account_id, _ = subscribed(app, locale="fr")  # issues 2026-000001
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    return account_id


def test_r2_2_the_owner_downloads_the_invoice_as_a_pdf_file(renewly, invoiced, tmp_path):
    target = tmp_path / "facture.pdf"
    said = renewly("invoices", "pdf", "2026-000001", "-o", str(target), "--as", "owner@acme.test")
    assert (said.code, said.err) == (0, "")
    assert said.out.startswith(f"{target}: 2026-000001, ")
    assert target.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("acting, refusal", [
    ("admin@acme.test", "error: only the account owner (owner@acme.test) can do this\n"),
    ("stranger@else.test", "error: no invoice numbered '2026-000001'\n"),
])
def test_r2_2_anyone_but_the_owner_is_refused_in_one_line_and_no_file_is_written(renewly, invoiced, tmp_path, acting,
                                                                               refusal):
    target = tmp_path / "facture.pdf"
    said = renewly("invoices", "pdf", "2026-000001", "-o", str(target), "--as", acting)
    assert (said.code, said.out, said.err) == (2, "", refusal)
    assert not target.exists()


def test_an_existing_file_is_never_overwritten(renewly, invoiced, tmp_path):
    target = tmp_path / "facture.pdf"
    target.write_bytes(b"the accountant's own file")
    said = renewly("invoices", "pdf", "2026-000001", "-o", str(target), "--as", "owner@acme.test")
    assert (said.code, said.out) == (2, "")
    assert said.err == f"error: {target} exists: Renewly never overwrites a file it did not make; name a new one\n"
    assert target.read_bytes() == b"the accountant's own file"


@pytest.mark.parametrize("number, output, refusal", [
    ("2026-999999", "out.pdf", "error: no invoice numbered '2026-999999'\n"),
    ("2026-000001", "missing-folder/out.pdf",
     "error: cannot write missing-folder/out.pdf: No such file or directory\n"),
    ("2026-000001", "out\nX.pdf", "error: the file name 'out\\nX.pdf' holds a control character\n"),
    ("2026-000001", " ", "error: the file name ' ' is blank\n"),
])
def test_bad_input_is_one_line_and_exit_2(renewly, invoiced, tmp_path, number, output, refusal):
    said = renewly("invoices", "pdf", number, "-o", output, "--as", "owner@acme.test")
    assert (said.code, said.out, said.err) == (2, "", refusal)
    assert not (tmp_path / "missing-folder").exists()
