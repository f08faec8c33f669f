"""R10.1: in a deleted account's audit entries its people become pseudonyms, staff stay as named."""

from __future__ import annotations

from renewly.retention.rules.pseudonyms import AuditEntry, KnownPersonalData, pseudonymise

OWNER = "jeanne@dupont.test"
ADMIN = "marc@dupont.test"
KNOWN = KnownPersonalData(emails=frozenset({OWNER, ADMIN}),
                          texts=frozenset({"Dupont Plomberie", "Dupont", "12 rue des Lilas", "2026", "0341"}))


def entry(number: int, actor: str = "support:alice", action: str = "account.note", reason: str = "",
          **details) -> AuditEntry:
    return AuditEntry(id=number, actor=actor, action=action, reason=reason, details=details)


def rewritten(*entries: AuditEntry, known: KnownPersonalData = KNOWN) -> dict[int, AuditEntry]:
    _, changed = pseudonymise(7, known, list(entries))
    return {e.id: e for e in changed}


def test_r10_1_one_person_is_one_pseudonym_in_every_entry_numbered_as_they_first_appear():
    done = rewritten(entry(1, "test:operator", "account.created", owner=OWNER),
                     entry(2, "test:operator", "member.added", email=ADMIN, role="admin"),
                     entry(3, OWNER, "card.updated", brand="visa", last4="0341"),
                     entry(4, "support:alice", "ownership.transferred", reason=f"{OWNER.upper()} left",
                           **{"from": OWNER, "to": ADMIN}))
    assert done[1].details == {"owner": "account-7/person-1"}
    assert done[2].details == {"email": "account-7/person-2", "role": "admin"}
    assert (done[3].actor, done[3].details) == ("account-7/person-1", {"brand": "visa", "last4": ""})
    assert done[4].details == {"from": "account-7/person-1", "to": "account-7/person-2"}
    assert done[4].reason == "account-7/person-1 left"


def test_r10_1_staff_stay_as_named_and_an_entry_without_personal_data_is_left_alone():
    done = rewritten(entry(1, "cli:root", "plan.created", code="team"),
                     entry(2, "support@renewly.test", "reactivation.granted", reason="asked by phone", days=7),
                     entry(3, "support:alice", "member.removed", email=ADMIN))
    assert list(done) == [3]
    assert done[3].actor == "support:alice"


def test_r10_1_the_actor_of_what_only_a_customer_does_is_one_of_its_people_even_unknown():
    requester = "someone@elsewhere.test"
    done = rewritten(entry(1, requester, "billing_contact.requested", email="compta@dupont.test"),
                     entry(2, requester, "account.note"))
    assert (done[1].actor, done[1].details) == ("account-7/person-1", {"email": "account-7/person-2"})
    assert done[2].actor == "account-7/person-1"  # the same person, whatever they did next


def test_r10_1_an_address_written_in_a_reason_is_one_of_the_accounts_people():
    written = "paul@partner.test"
    done = rewritten(entry(1, written, "account.note"),
                     entry(2, reason=f"Called {written}. Then {OWNER}, and ({ADMIN})."))
    assert done[1].actor == "account-7/person-1"
    assert done[2].reason == "Called account-7/person-1. Then account-7/person-2, and (account-7/person-3)."


def test_r10_1_an_address_longer_than_a_known_one_is_another_person():
    done = rewritten(entry(1, reason=f"{OWNER}.evil.test and x{OWNER} and {OWNER}"))
    assert done[1].reason == "account-7/person-1 and account-7/person-2 and account-7/person-3"


def test_r10_1_names_and_address_lines_go_from_reasons_as_whole_words_the_longest_first():
    done = rewritten(entry(1, reason="Dupont Plomberie, at 12 RUE DES LILAS: Dupontel is someone else"))
    assert done[1].reason == "[deleted], at [deleted]: Dupontel is someone else"


def test_r10_1_details_keep_the_services_values_a_postcode_cannot_eat_an_invoice_number():
    done = rewritten(entry(1, reason="invoice 2026-000001", numbers=["2026-000001"], by=OWNER))
    assert done[1].details == {"numbers": ["2026-000001"], "by": "account-7/person-1"}
    assert done[1].reason == "invoice [deleted]-000001"  # a reason loses a word rather than keep one


def test_r10_1_the_numbers_do_not_depend_on_the_order_an_engine_keeps_keys_in():
    as_written = rewritten(entry(1, **{"from": OWNER, "to": ADMIN}))
    as_jsonb_keeps = rewritten(entry(1, **{"to": ADMIN, "from": OWNER}))
    assert as_written[1].details == as_jsonb_keeps[1].details == {"from": "account-7/person-1",
                                                                  "to": "account-7/person-2"}


def test_r10_1_pseudonymised_entries_have_nothing_left_to_rewrite():
    first = list(rewritten(entry(1, OWNER, "card.updated", reason=f"by {ADMIN}", last4="0341")).values())
    assert rewritten(*first) == {}


def test_r10_1_the_same_person_in_two_deleted_accounts_gets_two_unrelated_pseudonyms():
    _, [in_7] = pseudonymise(7, KNOWN, [entry(1, owner=OWNER)])
    _, [in_8] = pseudonymise(8, KNOWN, [entry(2, owner=OWNER)])
    assert (in_7.details, in_8.details) == ({"owner": "account-7/person-1"}, {"owner": "account-8/person-1"})


def test_r10_1_an_address_the_services_accepted_but_no_pattern_reads_whole_is_matched_as_known():
    odd = "a(b)@dupont.test"  # one @, no space, a dot in the domain: validate_email takes it
    done = rewritten(entry(1, odd, "card.updated", reason=f"saved by {odd}, for b@dupont.test"),
                     known=KnownPersonalData(emails=frozenset({odd})))
    assert (done[1].actor, done[1].reason) == ("account-7/person-1",
                                               "saved by account-7/person-1, for account-7/person-2")
