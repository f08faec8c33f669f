"""R5.4: a card number in free text is recognised (Luhn's check digit) and withheld."""

from __future__ import annotations

from renewly.payments.rules.card_numbers import (
    WITHHELD,
    holds_card_number,
    holds_card_number_anywhere,
    luhn_valid,
    withhold_card_numbers,
)


def test_r5_4_card_numbers_are_recognised_in_any_usual_writing():
    for written in ("4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "name 378282246310005 x"):
        assert holds_card_number(written), written


def test_r5_4_digits_that_are_no_card_number_are_left_alone():
    for written in ("4242424242424241", "9223372036854775807", "12345", "2026-000123", "FR00123456789"):
        assert not holds_card_number(written) and withhold_card_numbers(written) == written, written


def test_r5_4_a_card_number_is_withheld_and_the_rest_kept():
    assert withhold_card_numbers("card 4242 4242 4242 4242, 4000-0000-0000-0002!") == f"card {WITHHELD}, {WITHHELD}!"
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")


def test_r5_4_a_card_number_is_found_anywhere_in_a_json_document_key_or_value():
    for document in ("4242 4242 4242 4242", {"token": "4242424242424242"}, {"4242424242424242": 1},
                     {"a": [{"b": ["x", "pan 4242-4242-4242-4242"]}]}):
        assert holds_card_number_anywhere(document), document
    # Numbers are ids and amounts; digits that fail Luhn's check are no card number.
    for document in ({"account_id": 4242424242424242}, {"token": "4242424242424241"}, None, [], {"a": {}}):
        assert not holds_card_number_anywhere(document), document
    deep: list = ["4242424242424242"]
    for _ in range(100_000):  # no recursion limit to hit
        deep = [deep]
    assert holds_card_number_anywhere(deep)


def test_r5_4_a_gateway_token_s_random_digits_are_no_card_number():
    # Hex tokens hold a dozen digits in a row now and then, a tenth of them Luhn-valid: the
    # simulated gateway's `pm_sim_` tokens were refused as card numbers a few times a run.
    for token in ("pm_sim_ab4242424242424242cd", "pm_sim_424242424242424242424242", "cus_4242424242424242x"):
        assert not holds_card_number(token) and withhold_card_numbers(token) == token, token
    for pasted in ("pm_sim_4242424242424242", "4242424242424242\x07", "(4242 4242 4242 4242)"):
        assert holds_card_number(pasted), pasted
