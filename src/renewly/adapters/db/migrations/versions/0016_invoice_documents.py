"""invoice documents: each issued document's PDF, stored once, content-addressed

The PDF of an invoice or credit note (PDF/A-3 with its Factur-X XML, billing/documents.py) is
rendered at its first download and kept: later downloads serve these bytes, so that a template,
a library or a setting changed after that never alters what the customer was given (R2.4). The
SHA-256 names the content and every read checks it. Like the documents they belong to, the rows
are never updated and deleted only by the retention batch, with their invoice (R10.2): the same
guards as migration 0009's.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

CHANGED = "invoice_documents rows cannot be changed (R2.4): a stored PDF is served as it was first given"
DELETED = ("invoice_documents rows cannot be deleted (R2.4): only the retention batch deletes them, "
           "with their invoice (R10.2)")

PG_GUARDS = (
    ("invoice_documents_never_updated", "UPDATE", "", CHANGED),
    ("invoice_documents_deleted_only_when_purging", "DELETE", "renewly.purging", DELETED),
    ("invoice_documents_never_truncated", "TRUNCATE", "", "invoice_documents cannot be truncated (R2.4)"),
)
SQLITE_GUARDS = (
    ("invoice_documents_never_updated", "UPDATE", "1", CHANGED),
    ("invoice_documents_deleted_only_when_purging", "DELETE",
     "NOT EXISTS (SELECT 1 FROM document_writes WHERE purpose = 'purging')", DELETED),
    ("invoice_documents_never_replaced", "INSERT",
     "EXISTS (SELECT 1 FROM invoice_documents WHERE invoice_id = NEW.invoice_id OR sha256 = NEW.sha256)", CHANGED),
)


def upgrade() -> None:
    op.create_table(
        'invoice_documents',
        sa.Column('invoice_id', Id, autoincrement=False, nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('media_type', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_invoice_documents_invoice_id_invoices')),
        sa.PrimaryKeyConstraint('invoice_id', name=op.f('pk_invoice_documents')),
        sa.UniqueConstraint('sha256', name=op.f('uq_invoice_documents_sha256')))
    if op.get_bind().dialect.name == 'postgresql':
        for name, event, door, refusal in PG_GUARDS:
            op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON invoice_documents FOR EACH STATEMENT "
                       f"EXECUTE FUNCTION renewly_refuse_unless_open('{door}', '{refusal}')")
        return
    for name, event, when, refusal in SQLITE_GUARDS:
        op.execute(f"CREATE TRIGGER {name} BEFORE {event} ON invoice_documents FOR EACH ROW WHEN {when} "
                   f"BEGIN SELECT RAISE(ABORT, '{refusal}'); END")


def downgrade() -> None:
    op.drop_table('invoice_documents')
