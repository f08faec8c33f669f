"""The schema, as SQLAlchemy Core tables. Alembic's migrations are the history of this file.

Money columns are BIGINT minor units beside a currency column, on both engines (SQLite would
sum NUMERIC as float). Instants are stored in UTC; dates are calendar dates.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

# Nothing here names SQLAlchemy's PostgreSQL dialect: a JSONB type or a `postgresql_*` keyword
# would make SQLAlchemy load that whole dialect to check it, in every SQLite command too (a
# seventh of a simple read's start; docs/performance.md). What is PostgreSQL's own is asked of
# the dialect in use when a statement is compiled (Document), or lives in the migrations, which
# create the schema on both engines (a partial index's WHERE).


class Document(TypeDecorator):
    """JSON: JSONB on PostgreSQL, SQLite's JSON elsewhere."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> Index:
    """An index of the rows `where` holds, the same on both engines: on SQLite from here
    (`sqlite_where`); on PostgreSQL the migration that creates it says the same WHERE (see above)."""
    return Index(name, *columns, unique=unique, sqlite_where=text(where))


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the engine keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


accounts = Table(
    "accounts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("locale", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    # The buyer address (R3): printed on future invoices, never on past ones.
    Column("buyer_name", String(200), nullable=False),
    Column("buyer_line1", String(200), nullable=False, server_default=""),
    Column("buyer_line2", String(200), nullable=False, server_default=""),
    Column("buyer_postcode", String(32), nullable=False, server_default=""),
    Column("buyer_city", String(100), nullable=False, server_default=""),
    Column("buyer_country", String(2), nullable=False, server_default=""),
    Column("buyer_vat_id", String(32), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Who sees a dunning banner now (R8): none, owner_and_admins, everyone.
    Column("banner", String(20), nullable=False, server_default="none"),
    Column("cancelled_at", UTCDateTime()),  # the suspension date of R10.1
    Column("deletion_due_at", UTCDateTime()),  # set once at cancellation; a reactivation never moves it
    Column("deleted_at", UTCDateTime()),
    # The operator's own key for an imported account (`renewly import`, migration 0012); NULL otherwise.
    Column("external_key", String(100)),
    CheckConstraint("status IN ('active', 'past_due', 'cancelled', 'deleted')", name="status"),
    Index("uq_accounts_external_key", "external_key", unique=True),
    partial_index("ix_accounts_deletion_due", "deletion_due_at", where="status = 'cancelled'"),
)

members = Table(
    "members", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(8), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("account_id", "email", name="uq_members_account_email"),
    CheckConstraint("role IN ('owner', 'admin', 'agent')", name="role"),
    # At most one owner per account; services make it exactly one.
    partial_index("uq_members_one_owner", "account_id", unique=True, where="role = 'owner'"),
)

plans = Table(
    "plans", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(63), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("interval", String(8), nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("interval IN ('month', 'year')", name="interval"),
    CheckConstraint("unit_amount >= 0", name="unit_amount"),
)

subscriptions = Table(
    "subscriptions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("plan_id", Id, ForeignKey("plans.id"), nullable=False),
    Column("seats", Integer, nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("anchor_date", Date, nullable=False),  # period k starts on anchor + k intervals
    Column("periods_invoiced", Integer, nullable=False, server_default="0"),
    Column("current_period_start", Date),  # the last invoiced period; NULL before the first invoice
    Column("current_period_end", Date),  # exclusive: also the next renewal date
    Column("renews_at", UTCDateTime(), nullable=False),  # local midnight of the next renewal date
    Column("created_at", UTCDateTime(), nullable=False),
    CheckConstraint("seats >= 1", name="seats"),
    CheckConstraint("status IN ('active', 'cancelled')", name="status"),
    partial_index("ix_subscriptions_due", "renews_at", "id", where="status = 'active'"),
    # An account's subscriptions; unique as the pair an invoice's foreign key points at.
    Index("uq_subscriptions_account_id_id", "account_id", "id", unique=True),
)

# Amounts waiting for a subscription's next invoice: prorations of seat changes, carried credits.
pending_items = Table(
    "pending_items", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscription_id", Id, ForeignKey("subscriptions.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_start", Date),
    Column("period_end", Date),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("invoice_id", Id, ForeignKey("invoices.id")),
    partial_index("ix_pending_items_open", "subscription_id", where="invoice_id IS NULL"),
)

# One row per numbering series: the next number to give. Locked while a transaction issues
# invoices, so numbers are gapless (a rolled-back transaction gives its numbers back).
invoice_series = Table(
    "invoice_series", metadata,
    Column("series", String(16), primary_key=True),
    Column("next_sequence", BigInteger, nullable=False),
)

invoices = Table(
    "invoices", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("series", String(16), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("account_id", Id, nullable=False),
    Column("subscription_id", Id),  # an invoice's; a credit note has none
    Column("credited_invoice_id", Id),  # a credit note's; an invoice has none
    Column("issue_date", Date, nullable=False),
    Column("period_start", Date),
    Column("period_end", Date),
    Column("currency", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("tax_rate", String(12), nullable=False),  # percent, as a decimal string
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("locale", String(8), nullable=False),
    Column("seller", Document, nullable=False),
    Column("buyer", Document, nullable=False),
    Column("status", String(8), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("status_changed_at", UTCDateTime()),
    UniqueConstraint("series", "sequence", name="uq_invoices_series_sequence"),
    CheckConstraint("kind IN ('invoice', 'credit_note')", name="kind"),
    CheckConstraint("status IN ('open', 'paid', 'void')", name="status"),
    CheckConstraint("total = subtotal + tax", name="total"),
    # The account comes with the subscription (or the credited invoice): an invoice cannot name
    # another account's subscription. One foreign-key check per renewal invoice, on a row the
    # renewal already holds (migration 0006; SQLite keeps 0001's single-column keys).
    CheckConstraint("(kind = 'invoice' AND subscription_id IS NOT NULL AND credited_invoice_id IS NULL)"
                    " OR (kind = 'credit_note' AND credited_invoice_id IS NOT NULL AND subscription_id IS NULL)",
                    name="parent"),
    ForeignKeyConstraint(["account_id", "subscription_id"], ["subscriptions.account_id", "subscriptions.id"],
                         name="fk_invoices_account_id_subscriptions"),
    ForeignKeyConstraint(["account_id", "credited_invoice_id"], ["invoices.account_id", "invoices.id"],
                         name="fk_invoices_account_id_invoices"),
    # Exactly one invoice per subscription and period, whoever runs the renewal and how often.
    partial_index("uq_invoices_subscription_period", "subscription_id", "period_start", unique=True,
                  where="kind = 'invoice'"),
    Index("uq_invoices_account_id_id", "account_id", "id", unique=True),  # also what credit notes point at
    Index("ix_invoices_issue_date", "issue_date"),  # the retention purge (R10.2)
    partial_index("ix_invoices_credited_invoice_id", "credited_invoice_id", where="credited_invoice_id IS NOT NULL"),
    # The unpaid ones, a small part of the table: the dunning sweep opens cases from them.
    partial_index("ix_invoices_open", "id", where="status = 'open'"),
)

# Triggers (migrations 0001, 0009) keep an issued document as it was issued (R2.4): its content
# columns never change, nor its lines; lines are inserted only while the document is issued, and
# documents and lines deleted only by the retention batch (adapters/db/guards.py).
invoice_lines = Table(
    "invoice_lines", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_amount", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("period_start", Date),
    Column("period_end", Date),
    UniqueConstraint("invoice_id", "position", name="uq_invoice_lines_invoice_position"),
)

# The e-mails delivery has still to send (or try again): ix_outbox_mail_due's rows.
MAIL_DUE = "topic = 'email' AND delivered_at IS NULL AND failed_at IS NULL"

# The events the webhooks batch has still to hand to the endpoints that want them (renewly.webhooks:
# `delivered_at` is set once their deliveries are made): ix_outbox_events_due's rows.
EVENTS_DUE = "topic <> 'email' AND delivered_at IS NULL"

# The PDF of an issued document, rendered once (the first download) and served as stored ever
# after (R2.4): content-addressed by its SHA-256, which every read checks. Triggers (migration
# 0016) refuse any UPDATE, and a DELETE but the retention batch's, with its invoice (R10.2).
invoice_documents = Table(
    "invoice_documents", metadata,
    Column("invoice_id", Id, ForeignKey("invoices.id"), primary_key=True, autoincrement=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("media_type", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Events for the host product, e-mails and webhooks, written in the transaction of the change
# they report and delivered afterwards by a relay. An id is never given twice, even after the
# retention batch deleted the rows above it: consumers may drop an id they have seen (on SQLite,
# AUTOINCREMENT, migration 0009; PostgreSQL's sequences never go back).
outbox = Table(
    "outbox", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("account_id", Id),
    Column("payload", Document, nullable=False),
    Column("delivered_at", UTCDateTime()),
    # E-mail delivery (renewly.mail.delivery, migration 0015): tries so far, when the next one is
    # due (NULL: at once), a process's wall-clock claim while it sends, a permanent failure and the
    # last error (the server's reply).
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),
    Column("failed_at", UTCDateTime()),
    Column("last_error", Text),
    partial_index("ix_outbox_undelivered", "id", where="delivered_at IS NULL"),
    partial_index("ix_outbox_mail_due", "id", where=MAIL_DUE),
    partial_index("ix_outbox_mail_failed", "id", where="failed_at IS NOT NULL"),
    Index("ix_outbox_account_id", "account_id"),
    partial_index("ix_outbox_events_due", "id", where=EVENTS_DUE),
    sqlite_autoincrement=True,
)

# -- webhooks to the host product (renewly.webhooks, migration 0018, docs/webhooks.md) -----------

# Where the host product receives events: its URL, the secret every delivery is signed with
# (Standard Webhooks, `whsec_...`), the public event types it wants (renewly.webhooks.rules.events).
# Disabled by the operator or after `webhooks.disable_after_hours` of failures (`failing_since`:
# the first failure since its last success): it gets no new event, its deliveries wait.
webhook_endpoints = Table(
    "webhook_endpoints", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("secret", String(100), nullable=False),
    Column("event_types", Document, nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    # It receives the events written from then on: registered, or enabled again.
    Column("events_from", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    Column("disabled_reason", Text),
    Column("failing_since", UTCDateTime()),
    # A rotated secret's predecessor signs beside the new one until then (webhooks.endpoints.rotate_secret).
    Column("previous_secret", String(100)),
    Column("previous_secret_until", UTCDateTime()),
)

# What a delivery still has to be tried: pending (its schedule running) or a replay asked by the
# operator (one try): ix_webhook_deliveries_due's rows.
DELIVERY_DUE = "status IN ('pending', 'replay')"

# One per endpoint and outbox event it wants, made by the webhooks batch: its webhook-id is the
# event's (`msg_<outbox id>`), the same at every try. Its event goes with it: the retention batch
# deletes a deleted account's outbox rows (R10.1), and their deliveries and attempts with them.
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("outbox_id", Id, ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime()),
    Column("claimed_until", UTCDateTime()),  # a process's wall-clock lease while it sends
    Column("delivered_at", UTCDateTime()),
    Column("failed_at", UTCDateTime()),
    CheckConstraint("status IN ('pending', 'replay', 'delivered', 'failed')", name="status"),
    UniqueConstraint("endpoint_id", "outbox_id", name="uq_webhook_deliveries_endpoint_event"),
    partial_index("ix_webhook_deliveries_due", "next_attempt_at", where=DELIVERY_DUE),
    Index("ix_webhook_deliveries_outbox_id", "outbox_id"),
)

# The log of a delivery: one row per try, what the endpoint answered (its HTTP status, or what
# went wrong: a timeout, a connection refused or dropped), how long it took, and the first
# characters of its response (webhooks.rules.answers.EXCERPT_CHARACTERS).
webhook_delivery_attempts = Table(
    "webhook_delivery_attempts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("replay", Boolean, nullable=False, server_default=false()),  # asked by the operator
    Column("http_status", Integer),
    Column("error", Text),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text, nullable=False, server_default=""),
    Index("ix_webhook_delivery_attempts_delivery_id", "delivery_id"),
)

# Append-only: triggers refuse UPDATE, DELETE, TRUNCATE and, on SQLite, REPLACE (migrations 0001, 0009),
# but for the retention batch, which rewrites a deleted account's people as pseudonyms in its
# entries' actor, reason and details, nothing else (R10.1, migration 0010, adapters/db/guards.py).
audit_log = Table(
    "audit_log", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("details", Document, nullable=False),
    Index("ix_audit_log_target", "target_type", "target_id"),  # an account's entries, for R10.1
)

# The persisted test clock: one row, present only when the test clock has been used.
test_clock = Table(
    "test_clock", metadata,
    Column("id", Integer, primary_key=True),
    Column("now", UTCDateTime(), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# When each batch last ran to completion, so that `clock advance` and `run` know what is due.
batch_runs = Table(
    "batch_runs", metadata,
    Column("batch", String(32), primary_key=True),
    Column("last_run_at", UTCDateTime(), nullable=False),
)


# -- payments (R5-R7) ------------------------------------------------------------------------------

# The gateway's customer for each account (R10.1 deletes it with the account's personal data).
gateway_customers = Table(
    "gateway_customers", metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("gateway", String(32), nullable=False),
    Column("customer", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# All Renewly keeps of a card (R5.4). One active card per account; a new one replaces it.
cards = Table(
    "cards", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("token", String(255), nullable=False),
    Column("brand", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # active, replaced, deleted
    Column("added_by", String(320), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('active', 'replaced', 'deleted')", name="status"),
    partial_index("uq_cards_one_active", "account_id", unique=True, where="status = 'active'"),
)

# The card check of R5.1: an authorization never captured, voided after the delay (R5.2).
# Committed as `pending` before the gateway is asked, so that none can be left open unseen.
card_verifications = Table(
    "card_verifications", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("card_token", String(255), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # pending, held, declined, unknown, voided, not_sent
    Column("authorization_ref", String(255)),
    Column("decline_code", String(32)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("void_due_at", UTCDateTime(), nullable=False),
    Column("voided_at", UTCDateTime()),
    Column("lease_expires_at", UTCDateTime(), nullable=False),
    partial_index("ix_card_verifications_open", "void_due_at", where="status IN ('held', 'unknown', 'pending')"),
)

# One row per charge attempt, committed before the gateway call with its own idempotency key.
payment_attempts = Table(
    "payment_attempts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("number", Integer, nullable=False),  # 1, 2, ... per invoice
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("card_id", Id, ForeignKey("cards.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("decline_code", String(32)),
    Column("charge", String(255)),  # the gateway's reference
    Column("reason", String(32), nullable=False),  # issued, card_updated, ...
    Column("created_at", UTCDateTime(), nullable=False),
    Column("settled_at", UTCDateTime()),
    # Wall-clock time until which the process that made it may still be calling the gateway;
    # the janitor leaves a pending attempt alone until then.
    Column("lease_expires_at", UTCDateTime(), nullable=False),
    # The queue worker (procrastinate's id, no foreign key: its rows go when it dies) that
    # claimed it, if one did: the janitor may take it over once that worker is seen dead.
    Column("worker_id", BigInteger),
    UniqueConstraint("invoice_id", "number", name="uq_payment_attempts_invoice_number"),
    CheckConstraint("status IN ('pending', 'succeeded', 'declined', 'unknown', 'not_sent')", name="status"),
    # Never two unsettled attempts on one invoice: a second collector's insert fails here.
    partial_index("uq_payment_attempts_one_unsettled", "invoice_id", unique=True,
                  where="status IN ('pending', 'unknown')"),
    Index("ix_payment_attempts_invoice_id", "invoice_id"),
)

# A request to charge an open invoice again: a dunning step's (reason `dunning:CASE:STEP`, the
# step's name: 92 characters at most) or a card update's (R7.1, `card_updated:CARD`). The next
# attempt on the invoice fulfils every request open when it is made.
payment_retries = Table(
    "payment_retries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("invoice_id", Id, ForeignKey("invoices.id"), nullable=False),
    Column("reason", String(100), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("attempt_id", Id, ForeignKey("payment_attempts.id")),
    UniqueConstraint("invoice_id", "reason", name="uq_payment_retries_invoice_reason"),
    partial_index("ix_payment_retries_open", "invoice_id", where="attempt_id IS NULL"),
)

# -- dunning (R8-R11) ------------------------------------------------------------------------------

# One case per account in dunning, open while any of its invoices is unpaid: an invoice issued
# during the case joins it (dunning_case_invoices) and follows its schedule. The sweep claims
# cases whose next step is due, so its cost follows the due work, not the number of accounts.
dunning_cases = Table(
    "dunning_cases", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("day0", Date, nullable=False),  # the renewal date of its first unpaid invoice, in the account's zone
    Column("status", String(16), nullable=False),  # open, recovered, written_off; merged (migration 0007)
    # The last step taken, by its name and day in the policy it was taken under (never a position:
    # the policy in force may have been edited since; `domain.dunning.place` finds where the case
    # stands in it). NULL: no step taken yet.
    Column("last_step_name", String(64)),
    Column("last_step_day", Integer),
    # Local midnight of the next step's day; NULL: no step left, or a cancellation waiting for
    # the notice of its warning (which then sets it).
    Column("next_step_at", UTCDateTime()),
    # A charging step's notice (e-mail, banner) waits for the answers of its charges: the step's
    # name until then (the payment batch that settles the last one gives the notice).
    Column("awaiting_step_name", String(64)),
    Column("warned_at", UTCDateTime()),  # when the warning's notice was given (the minimum warning)
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    CheckConstraint("status IN ('open', 'recovered', 'written_off', 'merged')", name="status"),
    partial_index("ix_dunning_cases_due", "next_step_at", "id", where="status = 'open'"),
    Index("ix_dunning_cases_account_id", "account_id"),
    # One open case per account: two sweeps at once cannot open a second one.
    partial_index("uq_dunning_cases_one_open", "account_id", unique=True, where="status = 'open'"),
)

# The schedule the open cases' next steps were computed under (`Policy.schedule_key`): a sweep
# under another one makes every case scheduled later due at once, so that each is placed in the
# new policy and rescheduled (a step moved earlier comes on its new day, not the old one's).
dunning_schedule = Table(
    "dunning_schedule", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("schedule_key", String(64), nullable=False),
    Column("policy_version", String(64), nullable=False),  # for people: the version that had it
    Column("changed_at", UTCDateTime(), nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# The invoices of each case; an invoice is chased by one case at most, ever.
dunning_case_invoices = Table(
    "dunning_case_invoices", metadata,
    Column("invoice_id", Id, ForeignKey("invoices.id"), primary_key=True, autoincrement=False),
    Column("case_id", Id, ForeignKey("dunning_cases.id"), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Index("ix_dunning_case_invoices_case_id", "case_id"),
)

# Each step taken, once (the unique key makes late, repeated and concurrent sweeps harmless),
# with the policy version in force.
dunning_steps = Table(
    "dunning_steps", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("case_id", Id, ForeignKey("dunning_cases.id"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("day", Integer, nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
    Column("email", String(64)),  # the e-mail sent for it, if any (a late sweep sends only the latest)
    Column("charge_requested", Integer, nullable=False, server_default="0"),
    # A step is known by its name: a case takes each named step once, whatever its position in
    # the policies in force over time (`step` is its position in the one it ran under).
    UniqueConstraint("case_id", "name", name="uq_dunning_steps_case_name"),
)

# Temporary reactivations granted by support (R9.2): billing pages only, owner only, until ends_at.
reactivations = Table(
    "reactivations", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("granted_by", String(320), nullable=False),
    Column("reason", Text, nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("outcome", String(16)),  # NULL while running; paid, expired
    Column("ended_at", UTCDateTime()),
    partial_index("uq_reactivations_one_running", "account_id", unique=True, where="outcome IS NULL"),
)

# Billing contacts (R4): the owner always is one; others are added only with the owner's consent.
billing_contacts = Table(
    "billing_contacts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("status", String(16), nullable=False),  # requested, active, refused, removed
    Column("requested_by", String(320), nullable=False),
    Column("requested_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("removed_at", UTCDateTime()),
    CheckConstraint("status IN ('requested', 'active', 'refused', 'removed')", name="status"),
    partial_index("uq_billing_contacts_current", "account_id", "email", unique=True,
                  where="status IN ('requested', 'active')"),
)

# -- rows a batch could not process (one bad row never stops the others) ----------------------------

# Left aside with the reason; claims skip them until the operator, having mended the row, puts
# it back (`renewly problems`, `renewly problems resolve`).
parked_rows = Table(
    "parked_rows", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("batch", String(32), nullable=False),
    Column("subject", String(32), nullable=False),  # subscription, dunning_case
    Column("subject_id", Id, nullable=False),
    Column("account_id", Id),
    Column("reason", Text, nullable=False),
    Column("parked_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("resolved_by", String(320)),
    partial_index("uq_parked_rows_open", "subject", "subject_id", unique=True, where="resolved_at IS NULL"),
)

# -- the gateway's rate cap, shared by every process (adapters/db/rate_cap.py) -------------------

# One row on PostgreSQL: the next free gateway call slot, on the database's clock. UNLOGGED there
# (migration 0013): emptied by a crash, written again by the next grant. Unused on SQLite.
gateway_rate_cap = Table(
    "gateway_rate_cap", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_slot", UTCDateTime(), nullable=False),
    CheckConstraint("id = 1", name="one_row"),
)

# -- the REST API (renewly/web, docs/api.md) -----------------------------------------------------

# The operator's secret API keys (`renewly apikeys`): only a SHA-256 of each is kept, the secret
# shown once at creation; `prefix` (its first characters) lets a list say which key is which.
api_keys = Table(
    "api_keys", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("last_used_at", UTCDateTime()),  # written at most once a minute (web/keys.py)
)

# POST requests sent with an Idempotency-Key, per API key: the first one's answer, replayed to
# the same request sent again, for 24 hours (web/idempotency.py). `running` while the first one
# executes, under a wall-clock lease (a process that died leaves it to the next try).
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("api_key_id", Id, ForeignKey("api_keys.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the method, path and body
    Column("status", String(8), nullable=False),
    Column("locked_until", UTCDateTime()),  # wall clock, while running
    Column("response_status", Integer),
    Column("response_type", String(100)),
    Column("response_body", LargeBinary),
    Column("created_at", UTCDateTime(), nullable=False),  # wall clock: the 24 hours are real time
    # The account the answer is about, if any: its rows go with the account's data (R10.1).
    Column("account_id", BigInteger),
    CheckConstraint("status IN ('running', 'done')", name="status"),
    UniqueConstraint("api_key_id", "key", name="uq_idempotency_keys_api_key_key"),
    Index("ix_idempotency_keys_created_at", "created_at"),
    Index("ix_idempotency_keys_account_id", "account_id"),
)

# -- the billing portal (renewly/portal/sessions.py, renewly/web/portal, docs/portal.md) ----------

# One-time sign-in links, made for one member: the SHA-256 of the token only; used once
# (`used_at`), before `expires_at`. A member removed takes their links along (ON DELETE CASCADE).
portal_links = Table(
    "portal_links", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", Id, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_by", String(200), nullable=False),  # the API key's name, or the command line's actor
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
)

# The sessions links open: the SHA-256 of the random id the browser's cookie holds. Ended at
# sign-out or when another sign-in replaces it in the same browser (`ended_at`); expired when
# unused for portal.session_idle_minutes (`last_seen_at`, written at most once a minute) or at
# `expires_at` (portal.session_hours after sign-in).
portal_sessions = Table(
    "portal_sessions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", Id, ForeignKey("members.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
)

# The support console's staff (docs/console.md, migration 0022): `support` acts, `finance` reads.
# Only the Argon2id hash of a password is kept. Never deleted (the audit log names
# `console:staff-ID`): disabled, which ends their sessions and refuses their sign-in.
staff = Table(
    "staff", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    CheckConstraint("role IN ('support', 'finance')", name="role"),
)

# A staff member's sign-in: the SHA-256 of the random id the browser's cookie holds; over as the
# portal's sessions are (sign-out, portal.session_idle_minutes unused, portal.session_hours).
staff_sessions = Table(
    "staff_sessions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("staff_id", Id, ForeignKey("staff.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
)

# Refused console sign-ins, one row per key (`ip:ADDRESS`, `email:ADDRESS`): what the throttle
# counts (console/rules/throttle.py). Rows older than its window are deleted as new ones come.
staff_sign_in_failures = Table(
    "staff_sign_in_failures", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_staff_sign_in_failures_key_at", "key", "at"),
    Index("ix_staff_sign_in_failures_at", "at"),
)
