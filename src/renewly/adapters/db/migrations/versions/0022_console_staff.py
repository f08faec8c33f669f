"""the support console: staff accounts, their sessions, and the sign-in failures the throttle counts

`staff`: the operator's people who sign in to /console (docs/console.md), made by `renewly staff
create`: an e-mail, a name, a role (`support` acts, `finance` reads), the Argon2id hash of the
password (never the password), and `disabled_at` (`renewly staff disable`; never deleted, so the
audit log's `console:staff-ID` keeps naming someone).
`staff_sessions`: a sign-in's server-side session, the SHA-256 of the random id in the cookie.
`staff_sign_in_failures`: one row per refused sign-in, under two keys (`ip:ADDRESS`,
`email:ADDRESS`); the throttle counts a key's rows of the last minutes, rows older than that are
deleted as new ones come.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'staff',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('support', 'finance')", name=op.f('ck_staff_role')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
        sa.UniqueConstraint('email', name=op.f('uq_staff_email')))
    op.create_table(
        'staff_sessions',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('staff_id', Id, nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_staff_sessions_staff_id_staff'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_staff_sessions_secret_hash')))
    op.create_index('ix_staff_sessions_staff_id', 'staff_sessions', ['staff_id'])
    op.create_table(
        'staff_sign_in_failures',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('key', sa.String(length=400), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sign_in_failures')))
    op.create_index('ix_staff_sign_in_failures_key_at', 'staff_sign_in_failures', ['key', 'at'])
    op.create_index('ix_staff_sign_in_failures_at', 'staff_sign_in_failures', ['at'])


def downgrade() -> None:
    op.drop_index('ix_staff_sign_in_failures_at', table_name='staff_sign_in_failures')
    op.drop_index('ix_staff_sign_in_failures_key_at', table_name='staff_sign_in_failures')
    op.drop_table('staff_sign_in_failures')
    op.drop_index('ix_staff_sessions_staff_id', table_name='staff_sessions')
    op.drop_table('staff_sessions')
    op.drop_table('staff')
