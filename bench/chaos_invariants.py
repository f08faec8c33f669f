"""What must hold in a Renewly database whatever happened to it: the checks of bench/chaos.py.

`check(engine, ledger)` reads a database (and the simulated gateway's ledger) after a run, and
returns counts of what broke, each of which must be 0 (`Counts.breaks`):

- duplicate_invoices: a (subscription, period) invoiced more than once (R2.1);
- gaps: numbers missing in an invoice series, or a series counter that is not its last number + 1;
- double_charges: an invoice charged successfully more than once by the gateway, or with more
  than one succeeded attempt; unrecorded_charges: money the gateway took that no succeeded
  attempt records (Kill Bill issue 1015's double charge looks like this once settled);
- overpaid: an invoice charged more than its total; over_credited: credit notes beyond the
  invoice they credit;
- paid_void: money taken for an invoice voided (credited) meanwhile. Reconcile must name it
  (issue 9, item 1), so it is counted apart, as a finding, not as a break;
- lost_emails: a dunning step whose notice was due and never written, a recovery without its
  confirmation, a settled charge without its payment event, an invoice without its
  `invoice.issued` event, a case without `dunning.case_opened`; phantom_emails: the reverse,
  e-mails and events about something that did not happen (a step not taken, an attempt settled
  otherwise, a recovery that did not happen);
- duplicate_events: the same e-mail or event twice (a step's e-mail, a payment event per
  attempt, a case opened, an invoice issued, a reactivation expired);
- pending_attempts: attempts still pending or unknown (after the janitor's lease: call it after
  a last run, once the lease has passed);
- parked: rows the batches parked and nobody resolved (a clean run parks none);
- held_authorizations: card-check authorizations the gateway still holds past their void
  delay (R5.2), or that no card check of Renewly's names (after a last run).

An account deleted by the retention batch loses its outbox rows (R10.1): its events are not checked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from renewly.adapters.db.tables import (
    accounts,
    card_verifications,
    dunning_cases,
    dunning_steps,
    invoice_series,
    invoices,
    outbox,
    parked_rows,
    payment_attempts,
)

# The counts that must be 0; the others are told, not failed on.
BREAKS = ("duplicate_invoices", "gaps", "double_charges", "unrecorded_charges", "overpaid", "over_credited",
          "lost_emails", "phantom_emails", "duplicate_events", "pending_attempts", "parked", "held_authorizations")
CHECKED_TOPICS = ("email", "invoice.issued", "payment.succeeded", "payment.declined", "dunning.case_opened",
                  "dunning.recovered", "reactivation.expired")


@dataclass
class Counts:
    # What happened, to tell what was tried: documents, money, dunning.
    invoices: int = 0
    credit_notes: int = 0
    charges: int = 0  # successful charges in the gateway's ledger
    declines: int = 0  # declined attempts
    cases: int = 0  # dunning cases opened
    recoveries: int = 0
    step_emails: int = 0
    cancellations: int = 0  # cases that reached a cancelling step (accounts cancelled)
    duplicate_invoices: int = 0
    gaps: int = 0
    double_charges: int = 0
    unrecorded_charges: int = 0
    overpaid: int = 0
    over_credited: int = 0
    paid_void: int = 0
    lost_emails: int = 0
    phantom_emails: int = 0
    duplicate_events: int = 0
    pending_attempts: int = 0
    parked: int = 0
    held_authorizations: int = 0

    @property
    def breaks(self) -> int:
        return sum(getattr(self, name) for name in BREAKS)

    def broken(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in BREAKS if getattr(self, name)}

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check(engine: Engine, ledger, *, settled: bool = True, held: list[str] = (), now: datetime | None = None,
          ) -> Counts:
    """Counts of what broke. `ledger`: the gateway's charges (`SimulatedGateway.ledger()`);
    `held`: the authorizations it still holds (`held_authorizations()`), as of `now`.
    `settled=False` after a crash, before the next run: unsettled attempts, notices waiting
    for them and voids due are work left, not breaks."""
    counts = Counts()
    with engine.connect() as conn:
        _documents(conn, counts)
        attempts = conn.execute(select(payment_attempts.c.id, payment_attempts.c.invoice_id,
                                       payment_attempts.c.idempotency_key, payment_attempts.c.status,
                                       payment_attempts.c.amount)).all()
        totals = dict(conn.execute(select(invoices.c.id, invoices.c.total)
                                   .where(invoices.c.kind == "invoice")).all())
        status_of = dict(conn.execute(select(invoices.c.id, invoices.c.status)).all())
        _money(counts, attempts, totals, status_of, ledger)
        if settled:
            counts.pending_attempts = sum(1 for row in attempts if row.status in ("pending", "unknown"))
        counts.parked = conn.execute(select(func.count()).select_from(parked_rows)
                                     .where(parked_rows.c.resolved_at.is_(None))).scalar_one()
        _events(conn, counts, attempts, status_of, settled)
        if settled and held:
            due = dict(conn.execute(select(card_verifications.c.authorization_ref, card_verifications.c.void_due_at)
                                    .where(card_verifications.c.authorization_ref.in_(list(held)))).all())
            counts.held_authorizations = sum(1 for ref in held if ref not in due or due[ref] <= now)
    return counts


def _documents(conn, counts: Counts) -> None:
    rows = conn.execute(select(invoices.c.kind, invoices.c.series, invoices.c.sequence, invoices.c.subscription_id,
                               invoices.c.period_start, invoices.c.credited_invoice_id, invoices.c.total,
                               invoices.c.id)).all()
    counts.invoices = sum(1 for row in rows if row.kind == "invoice")
    counts.credit_notes = len(rows) - counts.invoices
    periods = Counter((row.subscription_id, row.period_start) for row in rows if row.kind == "invoice")
    counts.duplicate_invoices = sum(n - 1 for n in periods.values() if n > 1)
    # Invoices purged by retention (R10.2) leave the series' first numbers missing: a gap is a
    # number missing between the lowest kept and the counter.
    series: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        series[row.series].append(row.sequence)
    counters = dict(conn.execute(select(invoice_series.c.series, invoice_series.c.next_sequence)).all())
    for name, sequences in series.items():
        counts.gaps += max(sequences) - min(sequences) + 1 - len(set(sequences))
        counts.gaps += counters.get(name, 0) != max(sequences) + 1
    total_of = {row.id: row.total for row in rows}
    credited: Counter = Counter()
    for row in rows:
        if row.kind == "credit_note":
            credited[row.credited_invoice_id] += row.total
    counts.over_credited = sum(1 for invoice_id, amount in credited.items() if amount > total_of.get(invoice_id, 0))


def _money(counts: Counts, attempts, totals: dict, status_of: dict, ledger) -> None:
    by_key = {row.idempotency_key: row for row in attempts}
    charged: dict[int, list[int]] = defaultdict(list)
    for charge in ledger:
        if charge.outcome.value != "succeeded":
            continue
        counts.charges += 1
        attempt = by_key.get(charge.idempotency_key)
        if attempt is None:
            counts.unrecorded_charges += 1
            continue
        if attempt.status not in ("succeeded", "pending", "unknown"):
            counts.unrecorded_charges += 1  # settled as declined or not sent, while the money was taken
        charged[attempt.invoice_id].append(charge.amount)
    counts.declines = sum(1 for row in attempts if row.status == "declined")
    succeeded = Counter(row.invoice_id for row in attempts if row.status == "succeeded")
    counts.double_charges = sum(1 for invoice_id in set(charged) | set(succeeded)
                                if len(charged.get(invoice_id, ())) > 1 or succeeded[invoice_id] > 1)
    counts.overpaid = sum(1 for invoice_id, amounts in charged.items() if sum(amounts) > totals.get(invoice_id, 0))
    counts.paid_void = sum(1 for invoice_id in charged if status_of.get(invoice_id) == "void")


def _events(conn, counts: Counts, attempts, status_of: dict, settled: bool) -> None:
    deleted = set(conn.execute(select(accounts.c.id).where(accounts.c.status == "deleted")).scalars())
    rows = [row for row in conn.execute(select(outbox.c.topic, outbox.c.account_id, outbox.c.payload)
                                        .where(outbox.c.topic.in_(CHECKED_TOPICS)))
            if row.account_id not in deleted]
    seen: Counter = Counter()
    for row in rows:
        payload = row.payload
        if row.topic == "email":
            if payload.get("step") is not None:
                seen[("step_email", payload.get("case_id"), payload["step"])] += 1
            elif payload.get("kind") == "payment_confirmed":
                seen[("confirmation", payload.get("case_id"))] += 1
        elif row.topic == "invoice.issued":
            seen[("issued", payload["invoice_id"])] += 1
        elif row.topic.startswith("payment."):
            seen[(row.topic, payload["attempt_id"])] += 1
        elif row.topic == "dunning.case_opened":
            seen[("opened", payload["case_id"])] += 1
        elif row.topic == "dunning.recovered":
            seen[("recovered", payload["case_id"])] += 1
        elif row.topic == "reactivation.expired":
            seen[("expired", payload["reactivation_id"])] += 1
    counts.duplicate_events = sum(n - 1 for n in seen.values() if n > 1)
    counts.recoveries = sum(1 for key in seen if key[0] == "recovered")
    counts.step_emails = sum(1 for key in seen if key[0] == "step_email")

    lost = phantom = 0
    # Every invoice has its event (credit notes have theirs under another topic).
    account_of = dict(conn.execute(select(invoices.c.id, invoices.c.account_id)
                                   .where(invoices.c.kind == "invoice")).all())
    lost += sum(1 for invoice_id, account_id in account_of.items()
                if account_id not in deleted and not seen[("issued", invoice_id)])
    # Every answered charge on an invoice still payable or paid by it has its event, and no event
    # tells an answer the attempt does not have. (The janitor records an answer on an invoice
    # voided meanwhile without an event: counted as paid_void.)
    attempt_account = dict(conn.execute(select(payment_attempts.c.id, payment_attempts.c.account_id)).all())
    for row in attempts:
        if attempt_account[row.id] in deleted:
            continue
        if row.status in ("succeeded", "declined") and status_of.get(row.invoice_id) != "void":
            lost += not seen[(f"payment.{row.status}", row.id)]
        for outcome in ("succeeded", "declined"):
            phantom += bool(seen[(f"payment.{outcome}", row.id)]) and row.status != outcome
    cases = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id, dunning_cases.c.status,
                                dunning_cases.c.awaiting_step_name, accounts.c.status.label("account_status"))
                         .join(accounts, accounts.c.id == dunning_cases.c.account_id)
                         .where(dunning_cases.c.status != "merged")).all()
    case_of = {case.id: case for case in cases if case.account_id not in deleted}
    counts.cases = len(cases)
    lost += sum(1 for case_id in case_of if not seen[("opened", case_id)])
    # A recovery tells the billing contacts; a confirmation tells a recovery that happened.
    lost += sum(1 for case_id in case_of if seen[("recovered", case_id)] and not seen[("confirmation", case_id)])
    phantom += sum(1 for key in seen if key[0] == "confirmation" and not seen[("recovered", key[1])])
    steps = conn.execute(select(dunning_steps.c.case_id, dunning_steps.c.step, dunning_steps.c.name,
                                dunning_steps.c.email, dunning_steps.c.charge_requested)).all()
    taken = {(row.case_id, row.name) for row in steps}
    counts.cancellations = len({row.case_id for row in steps if row.name == "account_cancelled"})
    for row in steps:
        case = case_of.get(row.case_id)
        if case is None or row.email is None or seen[("step_email", row.case_id, row.name)]:
            continue
        if not row.charge_requested:
            lost += 1  # given by the sweep in the transaction that took the step
        elif (case.status == "open" and case.account_status in ("active", "past_due")
              and (settled or case.awaiting_step_name != row.name)):
            # A charging step's notice waits for its charge (after a full run, no longer); it is
            # not given when the charge recovered the case, or the account was cancelled meanwhile.
            lost += 1
    phantom += sum(1 for key in seen if key[0] == "step_email" and (key[1], key[2]) not in taken
                   and key[1] in case_of)
    counts.lost_emails, counts.phantom_emails = lost, phantom
