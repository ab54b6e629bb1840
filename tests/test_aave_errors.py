"""Aave reverts read as names: v3.0-3.3 string codes, v3.4+ custom errors, and anything else."""

from __future__ import annotations

from eth_abi import encode
from hypothesis import given
from hypothesis import strategies as st

from chain.aave_errors import CODES, ERROR_STRING_SELECTOR, AaveError, decode_revert
from simulation.simulator import decode_revert_reason


def _error_string(message: str) -> bytes:
    return ERROR_STRING_SELECTOR + encode(["string"], [message])


def test_string_codes_of_the_liquidation_read_as_their_names():
    assert decode_revert(_error_string("45")) == AaveError(
        "HEALTH_FACTOR_NOT_BELOW_THRESHOLD", "45"
    )
    assert str(decode_revert(_error_string("46"))) == "COLLATERAL_CANNOT_BE_LIQUIDATED (46)"
    assert str(decode_revert(_error_string("47"))) == "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER (47)"
    assert str(decode_revert(_error_string("103"))) == "MUST_NOT_LEAVE_DUST (103)"


def test_v3_4_custom_errors_read_as_their_names():
    """Selectors as the reference computed them (builders-oracles-2026.md §4.1)."""
    for selector, name in (
        ("930bb771", "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"),
        ("b629b0e4", "MUST_NOT_LEAVE_DUST"),
        ("979b5ce8", "COLLATERAL_CANNOT_BE_LIQUIDATED"),
        ("3653732b", "SPECIFIED_CURRENCY_NOT_BORROWED_BY_USER"),
    ):
        assert decode_revert(bytes.fromhex(selector)) == AaveError(name)


def test_the_simulators_revert_reason_names_aave_errors_and_keeps_other_messages():
    assert decode_revert_reason(_error_string("45")) == "HEALTH_FACTOR_NOT_BELOW_THRESHOLD (45)"
    assert decode_revert_reason(_error_string("executor: not owner")) == "executor: not owner"
    assert decode_revert_reason(bytes.fromhex("930bb771")) == "HEALTH_FACTOR_NOT_BELOW_THRESHOLD"


@given(st.sampled_from(sorted(CODES)))
def test_every_code_decodes_to_its_constant(code):
    assert decode_revert(_error_string(code)) == AaveError(CODES[code], code)


@given(st.binary(max_size=80))
def test_any_revert_data_decodes_or_is_none_without_raising(data):
    decoded = decode_revert(data)
    assert decoded is None or isinstance(decoded, AaveError)


@given(st.text(max_size=40).filter(lambda m: m not in CODES))
def test_a_message_that_is_no_code_is_kept_verbatim(message):
    assert decode_revert(_error_string(message)) == AaveError(message)
