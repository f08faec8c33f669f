"""the REST API: secret API keys (their SHA-256 only) and the answers to idempotent POSTs

`api_keys`: `renewly apikeys create|list|revoke` (web/keys.py). A key is a random token of 256
bits shown once; the table keeps its SHA-256 (looked up by that hash on every request), a prefix
to tell keys apart, when it was made, revoked and last used.

`idempotency_keys`: a POST sent with an `Idempotency-Key` header, per API key, with the
fingerprint of its method, path and body and, once it has run, its answer (status, media type,
body), replayed to the same request for 24 hours (web/idempotency.py). Rows are purged as new
ones are written, by the index on `created_at`.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'api_keys',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_api_keys_secret_hash')))
    op.create_table(
        'idempotency_keys',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('api_key_id', Id, nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('response_type', sa.String(length=100), nullable=True),
        sa.Column('response_body', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('running', 'done')", name=op.f('ck_idempotency_keys_status')),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_idempotency_keys_api_key_id_api_keys')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('api_key_id', 'key', name='uq_idempotency_keys_api_key_key'))
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    op.drop_table('api_keys')
