"""Per-address admission: connection counts, link pacing, the delay after failed tickets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.admission import LOG_INTERVAL, SWEEP_ABOVE, Admission, Limits, Refusal


def test_connections_per_address_and_in_total() -> None:
    adm = Admission(Limits(max_connections=3, max_connections_per_address=2))
    assert adm.connection_opened("a", 0) is None
    assert adm.connection_opened("a", 0) is None
    refused = adm.connection_opened("a", 0)
    assert refused is not None and refused.refusal is Refusal.TOO_MANY_FROM_ADDRESS
    assert adm.connection_opened("b", 0) is None
    refused = adm.connection_opened("c", 0)
    assert refused is not None and refused.refusal is Refusal.TOO_MANY_CONNECTIONS
    adm.connection_closed("a")
    assert adm.connection_opened("c", 0) is None
    assert adm.connections == 3


def test_refusals_are_logged_once_per_interval_with_the_count_since() -> None:
    adm = Admission(Limits(max_connections_per_address=1))
    adm.connection_opened("a", 0)
    verdicts = [adm.connection_opened("a", t) for t in (0, 1, 2, LOG_INTERVAL + 1)]
    assert [v.log for v in verdicts if v] == [True, False, False, True]
    assert verdicts[-1] is not None and verdicts[-1].suppressed == 2


def test_link_attempts_are_a_token_bucket() -> None:
    adm = Admission(Limits(link_rate=10, link_burst=5))
    assert all(adm.link_attempt("a", 0) is None for _ in range(5))
    refused = adm.link_attempt("a", 0)
    assert refused is not None and refused.refusal is Refusal.LINK_RATE
    assert adm.link_attempt("b", 0) is None  # per address
    assert adm.link_attempt("a", 0.1) is None  # one token back after 1/rate
    assert adm.link_attempt("a", 0.1) is not None


def test_failed_tickets_double_the_delay_up_to_the_maximum_and_are_forgotten() -> None:
    adm = Admission(Limits(failed_ticket_delay=1, max_failed_ticket_delay=4))
    assert adm.ticket_delay("a", 0) == 0
    delays = []
    for t in range(5):
        adm.ticket_checked("a", False, t)
        delays.append(adm.ticket_delay("a", t))
    assert delays == [1, 2, 4, 4, 4]
    assert adm.ticket_delay("b", 5) == 0
    assert adm.ticket_delay("a", 4 + Limits().forget_failures_after) == 0
    adm.ticket_checked("a", False, 1000)
    adm.ticket_checked("a", True, 1000)
    assert adm.ticket_delay("a", 1000) == 0


def test_idle_addresses_are_swept() -> None:
    adm = Admission(Limits(link_rate=100, link_burst=1))
    for i in range(SWEEP_ABOVE + 1):
        adm.connection_opened(f"10.0.{i // 256}.{i % 256}", 0)
        adm.connection_closed(f"10.0.{i // 256}.{i % 256}")
    adm.connection_opened("x", 100)
    assert len(adm) == 1


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Limits(max_connections=0)
    with pytest.raises(ValueError):
        Limits(link_rate=0)


@given(
    st.lists(
        st.tuples(st.sampled_from(["open", "close", "link", "fail", "ok"]), st.sampled_from("abc"))
    )
)
def test_counts_never_go_negative_or_over_the_limits(ops: list[tuple[str, str]]) -> None:
    limits = Limits(max_connections=4, max_connections_per_address=2)
    adm = Admission(limits)
    open_by: dict[str, int] = {}
    for t, (op, address) in enumerate(ops):
        if op == "open" and adm.connection_opened(address, t) is None:
            open_by[address] = open_by.get(address, 0) + 1
        elif op == "close" and open_by.get(address):
            adm.connection_closed(address)
            open_by[address] -= 1
        elif op == "link":
            adm.link_attempt(address, t)
        elif op in ("fail", "ok"):
            adm.ticket_checked(address, op == "ok", t)
            assert 0 <= adm.ticket_delay(address, t) <= limits.max_failed_ticket_delay
        assert adm.connections == sum(open_by.values()) <= limits.max_connections
        assert all(n <= limits.max_connections_per_address for n in open_by.values())
