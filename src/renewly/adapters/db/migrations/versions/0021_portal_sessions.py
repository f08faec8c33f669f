"""the billing portal: one-time sign-in links and the sessions they open (SHA-256 of each only)

`portal_links`: a link the host product (`POST /v1/portal_sessions`) or an operator (`renewly
portal link`) makes for one member; it works once, for a few minutes (`portal.link_minutes`).
`portal_sessions`: what opening a link starts, the browser holding its random id in a cookie;
it ends at sign-out, after `portal.session_idle_minutes` unused, or `portal.session_hours` after
sign-in. Neither table keeps a secret: only the SHA-256 of the token or of the session id.

Both belong to a member (ON DELETE CASCADE): a member removed, or an account's personal data
deleted (R10.1), takes their links and sessions along.

Revision ID: 0021
Revises: 0020
"""
import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'portal_links',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('member_id', Id, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_portal_links_member_id_members'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_portal_links_token_hash')))
    op.create_index('ix_portal_links_member_id', 'portal_links', ['member_id'])
    op.create_table(
        'portal_sessions',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('member_id', Id, nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'], name=op.f('fk_portal_sessions_member_id_members'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_sessions')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_portal_sessions_secret_hash')))
    op.create_index('ix_portal_sessions_member_id', 'portal_sessions', ['member_id'])


def downgrade() -> None:
    op.drop_index('ix_portal_sessions_member_id', table_name='portal_sessions')
    op.drop_table('portal_sessions')
    op.drop_index('ix_portal_links_member_id', table_name='portal_links')
    op.drop_table('portal_links')
