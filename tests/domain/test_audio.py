"""Playback and record machines and messages: byte layouts written by hand from spice.proto
(``channel PlaybackChannel``, ``channel RecordChannel``), the order rules, hostile input
and an Opus round trip through PyAV's libopus."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelClosed
from spice.domain.channels.playback import PlaybackChannel
from spice.domain.channels.record import (
    DataWhileStopped,
    RecordChannel,
    RecordFrames,
    RecordStarted,
)
from spice.domain.channels.registry import KINDS, server_caps
from spice.domain.codecs.opus import OpusDecoder, OpusEncoder
from spice.domain.enums import AudioDataMode, ChannelType, PlaybackCap, RecordCap
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.link import NEED_DATA
from spice.domain.messages import audio as m

MINI = struct.Struct("<HI")


def frames(out: list[bytes | memoryview]) -> list[tuple[int, bytes]]:
    data = b"".join(bytes(p) for p in out)
    got = []
    while data:
        t, n = MINI.unpack_from(data)
        got.append((t, data[6 : 6 + n]))
        data = data[6 + n :]
    return got


def test_playback_layouts() -> None:
    assert m.PlaybackMode(0x01020304, 3).encode() == bytes.fromhex("04030201 0300")
    assert m.PlaybackStart(2, 1, 48000, 5).encode() == bytes.fromhex(
        "02000000 0100 80bb0000 05000000"
    )
    assert m.PlaybackData(1, b"ab").encode() == bytes.fromhex("01000000 6162")
    assert m.PlaybackVolume((0x1234, 0xFFFF)).encode() == bytes.fromhex("02 3412 ffff")
    assert m.PlaybackMute(True).encode() == b"\x01"
    assert m.PlaybackLatency(200).encode() == bytes.fromhex("c8000000")
    assert m.RecordStart(2, 1, 44100).encode() == bytes.fromhex("02000000 0100 44ac0000")
    with pytest.raises(ValueError):
        m.PlaybackVolume(())


def test_playback_order_and_modes() -> None:
    opus_client = CapabilitySet.of(PlaybackCap.VOLUME, PlaybackCap.OPUS)
    ch = PlaybackChannel(mini_header=True, client_caps=opus_client)
    ch.start_link(100)
    with pytest.raises(LocalProtocolError):
        ch.data(b"x", 1)
    assert ch.start(frequency=48000, channels=2, mm_time=100) == AudioDataMode.OPUS
    ch.data(b"pkt", 110)
    ch.stop()
    # 44.1 kHz is not an Opus rate: a fresh MODE (RAW) precedes the START.
    assert ch.start(frequency=44100, channels=2, mm_time=200) == AudioDataMode.RAW
    assert ch.set_volume((1, 2)) and ch.set_mute(False)
    assert not ch.set_latency(100)  # no LATENCY cap
    sent = frames(ch.data_to_send())
    assert [t for t, _ in sent] == [102, 103, 101, 104, 102, 103, 105, 106]
    assert sent[0][1] == struct.pack("<IH", 100, 3)
    assert sent[4][1] == struct.pack("<IH", 200, 1)
    off = PlaybackChannel(mini_header=True, client_caps=opus_client, compression=False)
    assert off.mode_for(48000, 2) == AudioDataMode.RAW


def record(opus: bool = True) -> RecordChannel:
    return RecordChannel(
        mini_header=True,
        client_caps=CapabilitySet.of(RecordCap.VOLUME),
        server_caps=KINDS[ChannelType.RECORD].caps if opus else CapabilitySet(),
    )


def feed(ch: RecordChannel, msg_type: int, body: bytes) -> list[object]:
    ch.receive_data(MINI.pack(msg_type, len(body)) + body)
    events = []
    while (e := ch.next_event()) is not NEED_DATA:
        events.append(e)
    return events


def test_record_flow_raw() -> None:
    ch = record()
    assert feed(ch, 101, b"\0" * 8) == [DataWhileStopped(1)]
    assert feed(ch, 101, b"\0" * 8) == []  # later ones only count
    ch.start()
    assert frames(ch.data_to_send()) == [(101, struct.pack("<IHI", 2, 1, 48000))]
    assert feed(ch, 102, struct.pack("<IH", 0, 1)) == []
    assert feed(ch, 103, struct.pack("<I", 9)) == [RecordStarted(9, AudioDataMode.RAW)]
    pcm = struct.pack("<2h", 5, -5)
    assert feed(ch, 101, struct.pack("<I", 10) + pcm) == [RecordFrames(10, pcm, 48000, 2)]
    ch.stop()
    assert ch.dropped == 2


def test_record_refuses_what_was_not_offered() -> None:
    ch = record(opus=False)
    ch.start()
    with pytest.raises(RemoteProtocolError, match="not offered"):
        feed(ch, 102, struct.pack("<IH", 0, AudioDataMode.OPUS))


@given(st.integers(0, 200), st.binary(max_size=64))
def test_record_garbage_gives_only_the_remote_error(msg_type: int, body: bytes) -> None:
    ch = record()
    ch.start()
    # DISCONNECTING is the client's goodbye: ChannelClosed, not an error.
    with contextlib.suppress(RemoteProtocolError, ChannelClosed):
        feed(ch, msg_type, body)


def test_opus_round_trip_keeps_the_tone() -> None:
    enc, dec = OpusEncoder(48000, 2), OpusDecoder(48000, 2)
    t = np.arange(48000) / 48000
    mono = (np.sin(2 * np.pi * 1000 * t) * 8000).astype(np.int16)
    pcm = np.repeat(mono[:, None], 2, axis=1).tobytes()
    packets = [enc.encode(pcm[i : i + 1920]) for i in range(0, len(pcm), 1920)]
    assert all(0 < len(p) <= 480 for p in packets)
    out = np.frombuffer(b"".join(dec.decode(p) for p in packets), "<i2").reshape(-1, 2)
    assert len(out) == 48000
    peak = np.argmax(np.abs(np.fft.rfft(out[:, 0].astype(float))))
    assert abs(peak * 48000 / len(out) - 1000) <= 10


def test_registry_caps() -> None:
    assert server_caps(ChannelType.RECORD) == CapabilitySet.of(RecordCap.VOLUME, RecordCap.OPUS)
    assert server_caps(ChannelType.MAIN) is None
