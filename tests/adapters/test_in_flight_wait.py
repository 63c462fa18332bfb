"""The display writer's wait for the bytes in flight to drain below the cap ends about when
they do: a fixed poll (an eighth of the round trip) left a 50 Mbit/s link idle for part of each
poll, which for frames that leave in a few ms each was a large share of the link."""

from __future__ import annotations

import pytest
import trio

from spice.adapters.channels import display as display_runner
from spice.adapters.tcp_info import PathTiming
from spice.domain.caps import CapabilitySet
from spice.domain.channels.display import DisplayChannel
from spice.domain.channels.registry import KINDS, ChannelSetup
from spice.domain.enums import ChannelType

RTT = 0.08
LINK = 50e6  # bits/s
DRAIN = LINK / 8  # bytes/s the path takes


def machine_on_the_path(now: float) -> DisplayChannel:
    kind = KINDS[ChannelType.DISPLAY]
    machine = kind.make(ChannelSetup(True, CapabilitySet(), kind.caps))
    assert isinstance(machine, DisplayChannel)
    machine.on_delivery_rate(LINK, now)
    return machine


@pytest.mark.parametrize("excess", [20_000, 100_000, 400_000])
async def test_the_wait_ends_within_a_ms_of_the_drain(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch, excess: int
) -> None:
    start = trio.current_time()
    machine = machine_on_the_path(start)
    cap = machine.in_flight_cap(RTT, start)
    assert cap is not None
    held_at_start = cap + excess

    def held(_sock: object) -> int:
        return max(0, int(held_at_start - DRAIN * (trio.current_time() - start)))

    monkeypatch.setattr(display_runner, "bytes_in_flight", held)
    monkeypatch.setattr(display_runner, "path_timing", lambda _sock: PathTiming(RTT, RTT, LINK))
    await display_runner._in_flight_below_cap(object(), machine)  # type: ignore[arg-type]
    waited = trio.current_time() - start
    drained = excess / DRAIN  # when the bytes held come down to the cap
    assert drained <= waited <= drained + 0.0015, (waited, drained)


async def test_a_path_that_never_drains_is_not_waited_on_for_ever(
    autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = trio.current_time()
    machine = machine_on_the_path(start)
    monkeypatch.setattr(display_runner, "bytes_in_flight", lambda _sock: 10**9)
    monkeypatch.setattr(display_runner, "path_timing", lambda _sock: PathTiming(RTT, RTT, LINK))
    await display_runner._in_flight_below_cap(object(), machine)  # type: ignore[arg-type]
    assert 1.0 <= trio.current_time() - start <= 1.03
