"""The simulated gateway: the embedded default, and the test double of a real one.

It behaves like Stripe in test mode: the card number picks the outcome (Stripe's test numbers),
every write takes an idempotency key and answers a repeated key with its first answer, and it
keeps its own ledger apart from Renewly's tables, so that the two can be reconciled: an SQLite
file of its own, or on PostgreSQL the schema `renewly_simulator`. Faults can be scripted: a
timeout after the charge went through, a timeout before, a server error, and latency.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    exists,
    func,
    inspect,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from renewly.adapters.clock import Clock
from renewly.adapters.db.engine import make_engine
from renewly.adapters.db.tables import UTCDateTime
from renewly.payments.rules.charges import ChargeRequest, GatewayResult, LedgerCharge, Outcome, SavedCard
from renewly.shared.errors import BillingError, InvalidInput

# On PostgreSQL the ledger's tables live in a schema of their own, beside Renewly's in the same
# database (settings.simulator_url): out of the way of Renewly's migrations, and of its tables'
# names. The tables name no schema; each connection maps them there.
LEDGER_SCHEMA = "renewly_simulator"
LEDGER_LOCK = 0x52454E4C  # a transaction-level advisory lock: two processes prepare the schema in turn

ledger_metadata = MetaData()

sim_customers = Table(
    "sim_customers", ledger_metadata,
    Column("id", String(40), primary_key=True),
    Column("account_id", BigInteger, nullable=False, unique=True),
    Column("email", String(320), nullable=False),
    Column("deleted", Integer, nullable=False, default=0),
)
sim_cards = Table(
    "sim_cards", ledger_metadata,
    Column("token", String(40), primary_key=True),
    Column("customer", String(40)),
    Column("brand", String(16), nullable=False),
    Column("last4", String(4), nullable=False),
    Column("exp_month", Integer, nullable=False),
    Column("exp_year", Integer, nullable=False),
    Column("behaviour", String(32), nullable=False),  # what charges and authorizations on it do
)
sim_operations = Table(
    "sim_operations", ledger_metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(120), nullable=False),
    Column("kind", String(16), nullable=False),  # authorization, charge, void
    Column("customer", String(40)),
    Column("card", String(40)),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("decline_code", String(32)),
    Column("state", String(16)),  # authorizations: held, voided
    Column("target", String(40)),  # a void's authorization
    Column("at", UTCDateTime(), nullable=False),  # when it was done: after the latency
    # When the request reached the gateway, before its latency: the instant a gateway's cap counts
    # (bench/scaleout.py reads it). NULL in a ledger made before the column.
    Column("received_at", UTCDateTime()),
    UniqueConstraint("idempotency_key", name="uq_sim_operations_key"),
)
sim_faults = Table(
    "sim_faults", ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("remaining", Integer, nullable=False),
    # A decline's: its code, and the account whose charges it declines (NULL: anybody's).
    Column("decline_code", String(32)),
    Column("account_id", BigInteger),
)


# What the gateway knows of a request, in one statement: whether any fault is scripted, the
# first answer to its idempotency key, and its card (of its customer); each NULL if none.
_first = sim_operations.alias("first_answer")
_card = sim_cards.alias("card")
_one_row = select(literal(1).label("one")).subquery("one_row")
WHAT_IS_KNOWN = select(
    exists().where(sim_faults.c.remaining > 0).label("faults_scripted"),
    _first.c.outcome.label("first_outcome"), _first.c.id.label("first_reference"),
    _first.c.decline_code.label("first_decline_code"), _first.c.amount.label("first_amount"),
    _card.c.token.label("card_token"), _card.c.exp_month, _card.c.exp_year, _card.c.behaviour,
).select_from(
    _one_row.outerjoin(_first, _first.c.idempotency_key == bindparam("key"))
    .outerjoin(_card, and_(_card.c.token == bindparam("token"), _card.c.customer == bindparam("customer"))))


class Fault(StrEnum):
    TIMEOUT_AFTER = "timeout_after"  # the gateway acts, then the answer is lost
    TIMEOUT_BEFORE = "timeout_before"  # the request is lost on the way: nothing happens
    SERVER_ERROR = "server_error"  # the gateway fails before acting and says so ambiguously
    # The next charges are declined, then the card behaves as it would (a card short of funds
    # until pay day): `--count N` declines, then success on a good card.
    DECLINE = "decline"


DECLINE_CODES = ("insufficient_funds", "generic_decline", "expired_card", "processing_error", "card_declined")


# Stripe's test card numbers and what they do here.
TEST_CARDS = {
    "4242424242424242": "succeeds",
    "5555555555554444": "succeeds",
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4000000000000119": "processing_error",
    "4000000000000341": "charges_declined",  # saves fine, every later charge is declined
}


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in reversed(number)]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def brand_of(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "unknown"


class SimulatedGateway:
    name = "simulated"

    def __init__(self, url: str, clock: Clock, latency: float = 0.0) -> None:
        engine = make_engine(url)
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(schema_translate_map={None: LEDGER_SCHEMA})
        self._engine: Engine = engine
        _prepare_ledger(engine)
        self._clock = clock
        self.latency = latency  # seconds added to every call, as a network would

    # -- the hosted card form's part: only the gateway ever sees the number (R5.4) ------------

    def tokenize(self, number: str, exp_month: int, exp_year: int) -> str:
        digits = "".join(number.split())
        if not digits.isdigit() or not 12 <= len(digits) <= 19 or not luhn_valid(digits):
            raise InvalidInput("the card number is incorrect", code="incorrect_number")
        token = f"pm_sim_{secrets.token_hex(12)}"
        with self._engine.begin() as conn:
            conn.execute(sim_cards.insert().values(token=token, customer=None, brand=brand_of(digits),
                                                   last4=digits[-4:], exp_month=exp_month, exp_year=exp_year,
                                                   behaviour=TEST_CARDS.get(digits, "succeeds")))
        return token

    # -- faults --------------------------------------------------------------------------------

    def script(self, fault: Fault | str, count: int = 1, *, decline_code: str = "insufficient_funds",
               account_id: int | None = None) -> None:
        """The next `count` operations fail this way; a decline counts charges only, of one
        account's customer if given."""
        fault = Fault(fault)
        if fault is Fault.DECLINE and decline_code not in DECLINE_CODES:
            raise InvalidInput(f"unknown decline code {decline_code!r}: expected one of {', '.join(DECLINE_CODES)}",
                               code="unknown_decline_code")
        with self._engine.begin() as conn:
            conn.execute(sim_faults.insert().values(
                kind=fault.value, remaining=count, decline_code=decline_code if fault is Fault.DECLINE else None,
                account_id=account_id if fault is Fault.DECLINE else None))

    @staticmethod
    def _take_fault(conn: Connection, kind: str, customer: str, repeated: bool) -> tuple[Fault, str | None] | None:
        """The first scripted fault that applies to this operation, used up by one. A decline
        applies to a new charge only (a `repeated` key gets its first answer), of its account if set."""
        applies = sim_faults.c.kind != Fault.DECLINE.value
        if kind == "charge" and not repeated:
            account_id = conn.execute(select(sim_customers.c.account_id)
                                      .where(sim_customers.c.id == customer)).scalar()
            # A decline has no other kind's column set: for anybody's charges, or this account's.
            applies = or_(applies, sim_faults.c.account_id.is_(None), sim_faults.c.account_id == account_id)
        row = conn.execute(select(sim_faults).where(sim_faults.c.remaining > 0, applies)
                           .order_by(sim_faults.c.id).limit(1)).first()
        if row is None:
            return None
        conn.execute(sim_faults.update().where(sim_faults.c.id == row.id)
                     .values(remaining=sim_faults.c.remaining - 1))
        return Fault(row.kind), row.decline_code

    # -- the port ------------------------------------------------------------------------------

    def ensure_customer(self, account_id: int, email: str, name: str) -> str:
        with self._engine.begin() as conn:
            found = conn.execute(select(sim_customers.c.id).where(sim_customers.c.account_id == account_id,
                                                                  sim_customers.c.deleted == 0)).scalar()
            if found:
                return found
            customer = f"cus_sim_{secrets.token_hex(8)}"
            conn.execute(sim_customers.insert().values(id=customer, account_id=account_id, email=email, deleted=0))
            return customer

    def attach_card(self, customer: str, card_token: str) -> SavedCard:
        with self._engine.begin() as conn:
            card = conn.execute(select(sim_cards).where(sim_cards.c.token == card_token)).first()
            if card is None or card.customer not in (None, customer):
                raise InvalidInput("the gateway does not know this card token", code="unknown_card_token")
            conn.execute(sim_cards.update().where(sim_cards.c.token == card_token).values(customer=customer))
        return SavedCard(token=card.token, brand=card.brand, last4=card.last4, exp_month=card.exp_month,
                         exp_year=card.exp_year)

    def authorize(self, customer: str, card_token: str, amount: int, currency: str,
                  idempotency_key: str) -> GatewayResult:
        return self._operate("authorization", idempotency_key, customer, card_token, amount, currency)

    def charge(self, request: ChargeRequest) -> GatewayResult:
        return self._operate("charge", request.idempotency_key, request.customer, request.card_token,
                             request.amount, request.currency)

    def void(self, authorization: str, idempotency_key: str) -> GatewayResult:
        received_at = self._clock.now()
        self._wait()
        try:
            with self._engine.begin() as conn:
                repeated = self._answer_for(conn, idempotency_key)
                if repeated is not None:
                    return repeated
                held = conn.execute(select(sim_operations).where(sim_operations.c.id == authorization,
                                                                 sim_operations.c.kind == "authorization")).first()
                if held is None:
                    raise InvalidInput(f"no authorization {authorization}", code="unknown_authorization")
                if held.state == "held":
                    conn.execute(sim_operations.update().where(sim_operations.c.id == authorization)
                                 .values(state="voided"))
                conn.execute(sim_operations.insert().values(
                    id=f"void_sim_{secrets.token_hex(8)}", idempotency_key=idempotency_key, kind="void",
                    customer=held.customer, card=held.card, amount=held.amount, currency=held.currency,
                    outcome=Outcome.SUCCEEDED.value, target=authorization, at=self._clock.now(),
                    received_at=received_at))
        except IntegrityError:  # the same key, sent at the same moment from elsewhere: its answer stands
            return self.find(idempotency_key) or GatewayResult(Outcome.UNKNOWN)
        return GatewayResult(Outcome.SUCCEEDED, reference=authorization, amount=held.amount)

    def find(self, idempotency_key: str) -> GatewayResult | None:
        with self._engine.connect() as conn:
            return self._answer_for(conn, idempotency_key)

    def ledger(self) -> Iterable[LedgerCharge]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(sim_operations).where(sim_operations.c.kind == "charge")
                                .order_by(sim_operations.c.at, sim_operations.c.id)).all()
        return [LedgerCharge(reference=row.id, idempotency_key=row.idempotency_key, amount=row.amount,
                             currency=row.currency, outcome=Outcome(row.outcome)) for row in rows]

    def held_authorizations(self) -> list[str]:
        """Authorizations still holding money on a card (R5.2 says: none past the void delay)."""
        with self._engine.connect() as conn:
            return list(conn.execute(select(sim_operations.c.id).where(
                sim_operations.c.kind == "authorization", sim_operations.c.state == "held")).scalars())

    def delete_customer(self, customer: str) -> None:
        with self._engine.begin() as conn:
            # Like a real gateway's deletion: the e-mail goes too (R10.1), the id is kept as a tombstone.
            conn.execute(sim_customers.update().where(sim_customers.c.id == customer).values(deleted=1, email=""))
            conn.execute(sim_cards.delete().where(sim_cards.c.customer == customer))

    def charge_count(self) -> int:
        with self._engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(sim_operations)
                                .where(sim_operations.c.kind == "charge")).scalar_one()

    def dispose(self) -> None:
        """Close the ledger's connections (a process's end closes them too)."""
        self._engine.dispose()

    # -- inside the simulated gateway ----------------------------------------------------------

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def _answer_for(self, conn, idempotency_key: str) -> GatewayResult | None:
        row = conn.execute(select(sim_operations).where(sim_operations.c.idempotency_key == idempotency_key)).first()
        if row is None:
            return None
        return GatewayResult(Outcome(row.outcome), reference=row.id, decline_code=row.decline_code, amount=row.amount)

    def _operate(self, kind: str, idempotency_key: str, customer: str, card_token: str, amount: int,
                 currency: str) -> GatewayResult:
        received_at = self._clock.now()
        self._wait()
        # One transaction, and in it one statement to learn what the gateway knows of the request
        # (scripted faults, the key's first answer, the card), then the operation's row: four
        # round trips to the ledger a charge. bench/scaleout.py's hosts spent most of their CPU
        # here when it took ten, in two transactions, each statement built anew.
        try:
            with self._engine.begin() as conn:
                known = conn.execute(WHAT_IS_KNOWN, {"key": idempotency_key, "token": card_token,
                                                     "customer": customer}).one()
                repeated = known.first_outcome is not None
                fault, scripted_decline = (self._take_fault(conn, kind, customer, repeated)
                                           if known.faults_scripted else None) or (None, None)
                if fault in (Fault.TIMEOUT_BEFORE, Fault.SERVER_ERROR):
                    return GatewayResult(Outcome.UNKNOWN)  # the fault used up, nothing else done
                if repeated:
                    return GatewayResult(Outcome.UNKNOWN) if fault is Fault.TIMEOUT_AFTER else GatewayResult(
                        Outcome(known.first_outcome), reference=known.first_reference,
                        decline_code=known.first_decline_code, amount=known.first_amount)
                card = known if known.card_token is not None else None
                # One read, none without latency (the answer comes as the request arrives): a
                # test clock's is a query.
                done_at = self._clock.now() if self.latency else received_at
                decline = scripted_decline or self._decline_code(kind, card, done_at)
                outcome = Outcome.DECLINED if decline else Outcome.SUCCEEDED
                reference = f"{'ch' if kind == 'charge' else 'auth'}_sim_{secrets.token_hex(10)}"
                conn.execute(sim_operations.insert(), {
                    "id": reference, "idempotency_key": idempotency_key, "kind": kind, "customer": customer,
                    "card": card_token, "amount": amount, "currency": currency, "outcome": outcome.value,
                    "decline_code": decline,
                    # A zero-amount authorization only validates the card: it holds nothing.
                    "state": "held" if kind == "authorization" and amount and not decline else None,
                    "target": None, "at": done_at, "received_at": received_at})
        except IntegrityError:  # the same key, sent at the same moment from elsewhere: its answer stands
            return self.find(idempotency_key) or GatewayResult(Outcome.UNKNOWN)
        if fault is Fault.TIMEOUT_AFTER:
            return GatewayResult(Outcome.UNKNOWN)
        return GatewayResult(outcome, reference=reference, decline_code=decline, amount=amount)

    @staticmethod
    def _decline_code(kind: str, card, now: datetime) -> str | None:
        if card is None:
            return "card_declined"
        if (card.exp_year, card.exp_month) < (now.year, now.month):
            return "expired_card"
        behaviour = card.behaviour
        if behaviour == "succeeds":
            return None
        if behaviour == "charges_declined":
            return "card_declined" if kind == "charge" else None
        return behaviour


class LedgerUnavailable(BillingError):
    code = "gateway_ledger_unavailable"


def _prepare_ledger(engine: Engine) -> None:
    """Create the ledger's tables (and on PostgreSQL their schema) where missing, in one
    transaction: SQLite's BEGIN IMMEDIATE or PostgreSQL's advisory lock makes processes starting
    at once take turns instead of creating the same table twice."""
    schema = LEDGER_SCHEMA if engine.dialect.name == "postgresql" else None
    try:
        with engine.begin() as conn:
            if schema:
                conn.execute(text("SELECT pg_advisory_xact_lock(:lock)"), {"lock": LEDGER_LOCK})
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
            ledger_metadata.create_all(conn)
            _add_missing_columns(conn, schema)
    except DBAPIError as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise LedgerUnavailable(f"the simulated gateway's ledger at {where} cannot be prepared: {reason}") from None


def _add_missing_columns(conn: Connection, schema: str | None) -> None:
    """A ledger made by an older Renewly lacks the columns of declines and the instant a request
    arrived: they are added (the ledger is the simulator's own, with no migration history)."""
    received_at = "TIMESTAMP WITH TIME ZONE" if schema else "DATETIME"  # as UTCDateTime makes it
    for name, columns in (("sim_faults", ("decline_code VARCHAR(32)", "account_id BIGINT")),
                          ("sim_operations", (f"received_at {received_at}",))):
        have = {column["name"] for column in inspect(conn).get_columns(name, schema=schema)}
        table = f"{schema}.{name}" if schema else name
        for column in columns:
            if column.split()[0] not in have:
                conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column}"))
