"""Hypothesis state machines for the main, inputs, cursor, playback and record channel machines.

Each test drives one machine through random sequences of what the server's own code may call
and what a client may send, against a small model written here from spice.proto and the
channel docstrings. Client bytes are built with :mod:`struct` from the protocol layouts and
server bytes are parsed the same way, so the machine is checked against the protocol and not
against its own codecs. (The display machine has its own in ``test_display_machine.py``; the
agent machine in ``agent/test_agent_state_machine.py``.)
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from spice.domain.caps import CapabilitySet
from spice.domain.channel import ChannelClosed, ChannelConnection
from spice.domain.channels.cursor import CursorChannel
from spice.domain.channels.inputs import InputsChannel
from spice.domain.channels.main import MainChannel
from spice.domain.channels.playback import PlaybackChannel
from spice.domain.channels.record import (
    MAX_FRAME_BYTES,
    DataWhileStopped,
    RecordChannel,
    RecordFrames,
    RecordStarted,
)
from spice.domain.enums import MouseMode
from spice.domain.errors import LocalProtocolError, RemoteProtocolError
from spice.domain.input_events import (
    KeyboardModifiersEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
    MouseWheelEvent,
)
from spice.domain.link import NEED_DATA
from spice.domain.scancodes import KeyEvent

# Numbers from spice.proto (spice-protocol enums.h).
MSGC_ACK_SYNC, MSGC_ACK, MSGC_PONG, MSGC_DISCONNECTING = 1, 2, 3, 6
MSG_SET_ACK, MSG_PING = 3, 4
MSGC_MAIN_CLIENT_INFO, MSGC_MAIN_ATTACH_CHANNELS, MSGC_MAIN_MOUSE_MODE_REQUEST = 101, 104, 105
MSGC_MAIN_AGENT_TOKEN = 108
MSG_MAIN_INIT, MSG_MAIN_CHANNELS_LIST, MSG_MAIN_MOUSE_MODE, MSG_MAIN_NAME, MSG_MAIN_UUID = (
    103,
    104,
    105,
    113,
    114,
)
MSGC_KEY_DOWN, MSGC_KEY_UP, MSGC_KEY_MODIFIERS, MSGC_KEY_SCANCODE = 101, 102, 103, 104
MSGC_MOUSE_MOTION, MSGC_MOUSE_POSITION, MSGC_MOUSE_PRESS, MSGC_MOUSE_RELEASE = 111, 112, 113, 114
MSG_INPUTS_INIT, MSG_INPUTS_KEY_MODIFIERS, MSG_INPUTS_MOUSE_MOTION_ACK = 101, 102, 111
MSG_CURSOR_INIT, MSG_CURSOR_SET, MSG_CURSOR_MOVE, MSG_CURSOR_HIDE = 101, 103, 104, 105
MSG_PLAYBACK_DATA, MSG_PLAYBACK_MODE, MSG_PLAYBACK_START, MSG_PLAYBACK_STOP = 101, 102, 103, 104
MSG_PLAYBACK_VOLUME, MSG_PLAYBACK_MUTE, MSG_PLAYBACK_LATENCY = 105, 106, 107
MSG_RECORD_START, MSG_RECORD_STOP, MSG_RECORD_VOLUME, MSG_RECORD_MUTE = 101, 102, 103, 104
MSGC_RECORD_DATA, MSGC_RECORD_MODE, MSGC_RECORD_START_MARK = 101, 102, 103
MODE_RAW, MODE_OPUS = 1, 3
#: spice-protocol: the server acks every 4 motion messages.
MOTION_ACK_BUNCH = 4

SETTINGS = settings(max_examples=40, stateful_step_count=30, deadline=None)


def mini(msg_type: int, body: bytes = b"") -> bytes:
    return struct.pack("<HI", msg_type, len(body)) + body


def parse_out(machine: ChannelConnection) -> list[tuple[int, bytes]]:
    """What the machine wants written, split into (type, body) by the mini header."""
    wire = b"".join(bytes(p) for p in machine.data_to_send())
    out = []
    while wire:
        assert len(wire) >= 6, "a partial header in the output"
        msg_type, size = struct.unpack_from("<HI", wire)
        assert len(wire) >= 6 + size, "a partial body in the output"
        out.append((msg_type, wire[6 : 6 + size]))
        wire = wire[6 + size :]
    return out


def feed(machine: ChannelConnection, wire: bytes, cut: int) -> list[Any]:
    """Feed ``wire`` in two pieces cut at ``cut`` and drain every event."""
    events = []
    cut = min(cut, len(wire))
    for piece in (wire[:cut], wire[cut:]):
        machine.receive_data(piece)
        while (event := machine.next_event()) is not NEED_DATA:
            events.append(event)
    return events


cuts = st.integers(0, 40)


# -- main ------------------------------------------------------------------------------------------


class MainMachine(RuleBasedStateMachine):
    @initialize(name_cap=st.booleans())
    def setup(self, name_cap: bool) -> None:
        # spice-protocol: SPICE_MAIN_CAP_NAME_AND_UUID is 1.
        caps = CapabilitySet.of(1) if name_cap else CapabilitySet.of()
        self.name_cap = name_cap
        self.machine = MainChannel(mini_header=True, client_caps=caps)
        self.attached = False
        self.pings: dict[int, int] = {}
        self.started = False

    @precondition(lambda self: not self.started)
    @rule(session=st.integers(0, 2**32 - 1), displays=st.integers(0, 4))
    def start(self, session: int, displays: int) -> None:
        self.machine.start(
            session_id=session,
            display_channels=displays,
            supported_mouse_modes=3,
            current_mouse_mode=1,
            multi_media_time=0,
            name="soak",
            uuid=__import__("uuid").UUID(int=7),
        )
        self.started = True
        out = parse_out(self.machine)
        expected = [MSG_MAIN_INIT] + ([MSG_MAIN_NAME, MSG_MAIN_UUID] if self.name_cap else [])
        assert [t for t, _ in out] == expected
        # SpiceMsgMainInit: eight uint32s, session id first.
        assert len(out[0][1]) == 32 and struct.unpack_from("<II", out[0][1]) == (session, displays)

    @rule(cut=cuts)
    def attach(self, cut: int) -> None:
        events = feed(self.machine, mini(MSGC_MAIN_ATTACH_CHANNELS), cut)
        assert len(events) == 1 and type(events[0]).__name__ == "AttachChannels"
        self.attached = True

    @rule(cache=st.integers(0, 2**64 - 1), cut=cuts)
    def client_info(self, cache: int, cut: int) -> None:
        (event,) = feed(self.machine, mini(MSGC_MAIN_CLIENT_INFO, struct.pack("<Q", cache)), cut)
        assert event.cache_size == cache

    @rule(mode=st.integers(0, 0xFFFF), cut=cuts)
    def mouse_mode_request(self, mode: int, cut: int) -> None:
        body = struct.pack("<H", mode)
        (event,) = feed(self.machine, mini(MSGC_MAIN_MOUSE_MODE_REQUEST, body), cut)
        assert event.mode == mode

    @rule(tokens=st.integers(0, 2**32 - 1), cut=cuts)
    def agent_token(self, tokens: int, cut: int) -> None:
        body = struct.pack("<I", tokens)
        (event,) = feed(self.machine, mini(MSGC_MAIN_AGENT_TOKEN, body), cut)
        assert event.num_tokens == tokens

    @rule(channels=st.lists(st.tuples(st.integers(1, 11), st.integers(0, 3)), max_size=6))
    def channels_list(self, channels: list[tuple[int, int]]) -> None:
        if not self.attached:
            with pytest.raises(LocalProtocolError):
                self.machine.send_channels_list(channels)
            assert parse_out(self.machine) == []
            return
        self.machine.send_channels_list(channels)
        ((msg_type, body),) = parse_out(self.machine)
        assert msg_type == MSG_MAIN_CHANNELS_LIST
        # SpiceMsgChannels: uint32 count, then (uint8 type, uint8 id) pairs.
        assert body == struct.pack("<I", len(channels)) + b"".join(
            struct.pack("<BB", t, i) for t, i in channels
        )

    @rule(now=st.integers(0, 2**63 - 1))
    def ping(self, now: int) -> None:
        if len(self.pings) > 16:
            with pytest.raises(LocalProtocolError):
                self.machine.ping(now)
            return
        ping_id = self.machine.ping(now)
        ((msg_type, body),) = parse_out(self.machine)
        assert msg_type == MSG_PING and struct.unpack_from("<IQ", body) == (ping_id, now)
        self.pings[ping_id] = now

    @rule(data=st.data(), cut=cuts)
    def pong(self, data: st.DataObject, cut: int) -> None:
        ping_id = data.draw(st.sampled_from([*self.pings, 9999]))
        stamp = self.pings.pop(ping_id, 5)
        events = feed(self.machine, mini(MSGC_PONG, struct.pack("<IQ", ping_id, stamp)), cut)
        # Only the answer to a ping of ours comes out, once.
        assert len(events) == (ping_id != 9999)

    @rule(mode=st.integers(1, 3))
    def server_mouse_mode(self, mode: int) -> None:
        self.machine.send_mouse_mode(3, mode)
        ((msg_type, body),) = parse_out(self.machine)
        assert msg_type == MSG_MAIN_MOUSE_MODE and body == struct.pack("<HH", 3, mode)

    @rule(msg_type=st.sampled_from([101, 105, 106, 108]), body=st.binary(max_size=1))
    def short_body(self, msg_type: int, body: bytes) -> None:
        """A fixed-size message cut short is a remote error; we stop on it (a fresh machine
        would be needed), so only check it on a copy of the machine's reader."""
        probe = MainChannel(mini_header=True, client_caps=CapabilitySet.of())
        probe.receive_data(mini(msg_type, body))
        with pytest.raises(RemoteProtocolError):
            probe.next_event()

    @invariant()
    def attached_as_modelled(self) -> None:
        assert self.machine.attached == self.attached
        assert self.machine.pings_outstanding == len(self.pings)


TestMainMachine = MainMachine.TestCase
TestMainMachine.settings = SETTINGS


# -- inputs ----------------------------------------------------------------------------------------

#: Make codes of ordinary keys and E0-extended ones (set 1).
plain_keys = st.sampled_from([0x01, 0x1E, 0x2A, 0x39, 0x1C, 0x0E, 0x3B])
extended_keys = st.sampled_from([0x1D, 0x38, 0x48, 0x4B, 0x50, 0x5B])


class InputsMachine(RuleBasedStateMachine):
    @initialize(mode=st.sampled_from([MouseMode.SERVER, MouseMode.CLIENT]))
    def setup(self, mode: MouseMode) -> None:
        self.machine = InputsChannel(mini_header=True, mouse_mode=mode)
        self.machine.start(0)
        assert [t for t, _ in parse_out(self.machine)] == [MSG_INPUTS_INIT]
        self.motions = 0
        self.acks = 0

    def _motion_acks(self) -> None:
        acks = [t for t, _ in parse_out(self.machine)]
        assert set(acks) <= {MSG_INPUTS_MOUSE_MOTION_ACK}
        self.acks += len(acks)
        assert self.acks == self.motions // MOTION_ACK_BUNCH

    @rule(mode=st.sampled_from([MouseMode.SERVER, MouseMode.CLIENT]))
    def switch_mode(self, mode: MouseMode) -> None:
        self.machine.mouse_mode = mode

    @rule(dx=st.integers(-(2**31), 2**31 - 1), dy=st.integers(-5, 5), buttons=st.integers(0, 127))
    def motion(self, dx: int, dy: int, buttons: int) -> None:
        events = feed(
            self.machine, mini(MSGC_MOUSE_MOTION, struct.pack("<iiH", dx, dy, buttons)), 3
        )
        self.motions += 1
        if self.machine.mouse_mode == MouseMode.SERVER:
            assert events == [MouseMotionEvent(dx, dy, buttons)]
        else:
            assert events == []
        self._motion_acks()

    @rule(x=st.integers(0, 5000), y=st.integers(0, 5000), display=st.integers(0, 3), cut=cuts)
    def position(self, x: int, y: int, display: int, cut: int) -> None:
        body = struct.pack("<IIHB", x, y, 1, display)
        events = feed(self.machine, mini(MSGC_MOUSE_POSITION, body), cut)
        self.motions += 1
        if self.machine.mouse_mode == MouseMode.CLIENT:
            assert events == [MousePositionEvent(x, y, 1, display)]
        else:
            assert events == []
        self._motion_acks()

    @rule(button=st.integers(1, 7), press=st.booleans(), cut=cuts)
    def button(self, button: int, press: bool, cut: int) -> None:
        wire = mini(
            MSGC_MOUSE_PRESS if press else MSGC_MOUSE_RELEASE, struct.pack("<BH", button, 0)
        )
        events = feed(self.machine, wire, cut)
        if button in (4, 5):
            assert events == ([MouseWheelEvent(-1 if button == 4 else 1, 0)] if press else [])
        else:
            assert events == [MouseButtonEvent(button, press, 0)]

    @rule(code=plain_keys, extended=st.booleans(), press=st.booleans(), cut=cuts)
    def key(self, code: int, extended: bool, press: bool, cut: int) -> None:
        byte = code | (0 if press else 0x80)
        # KEY_DOWN/KEY_UP carry the scan code bytes little-endian in a uint32.
        value = (0xE0 | byte << 8) if extended else byte
        wire = mini(MSGC_KEY_DOWN if press else MSGC_KEY_UP, struct.pack("<I", value))
        events = feed(self.machine, wire, cut)
        assert events == [KeyEvent((0xE000 | code) if extended else code, press)]

    @rule(codes=st.lists(plain_keys, min_size=1, max_size=4), cut=cuts)
    def scancode(self, codes: list[int], cut: int) -> None:
        data = b"".join(bytes((c, c | 0x80)) for c in codes)
        events = feed(self.machine, mini(MSGC_KEY_SCANCODE, data), cut)
        assert events == [KeyEvent(c, p) for c in codes for p in (True, False)]

    @rule()
    def lone_e0(self) -> None:
        """spice-html5's Windows key: dropped and counted, the channel goes on."""
        before = self.machine.bad_keys
        events = feed(self.machine, mini(MSGC_KEY_DOWN, struct.pack("<I", 0xE0)), 0)
        assert events == [] and self.machine.bad_keys == before + 1

    @rule(mods=st.integers(0, 7), cut=cuts)
    def modifiers(self, mods: int, cut: int) -> None:
        events = feed(self.machine, mini(MSGC_KEY_MODIFIERS, struct.pack("<H", mods)), cut)
        assert events == [KeyboardModifiersEvent(mods)]

    @rule(leds=st.integers(0, 7))
    def server_leds(self, leds: int) -> None:
        self.machine.set_modifiers(leds)
        assert parse_out(self.machine) == [(MSG_INPUTS_KEY_MODIFIERS, struct.pack("<H", leds))]


TestInputsMachine = InputsMachine.TestCase
TestInputsMachine.settings = SETTINGS


# -- cursor ----------------------------------------------------------------------------------------


class CursorMachine(RuleBasedStateMachine):
    """The ack window: SET_ACK(generation 1, window 20) first; the server may send while at
    most two windows are unacknowledged, and each ACK of the synced generation frees one
    window."""

    @initialize()
    def setup(self) -> None:
        self.machine = CursorChannel(mini_header=True)
        ((msg_type, body),) = parse_out(self.machine)
        assert msg_type == MSG_SET_ACK
        self.generation, self.window = struct.unpack("<II", body)
        assert self.window == 20
        self.synced = False
        self.unacked = 0

    def _sent(self, expected_type: int) -> None:
        out = parse_out(self.machine)
        assert [t for t, _ in out] == [expected_type]
        self.unacked += 1

    @rule(x=st.integers(-(2**15), 2**15 - 1), y=st.integers(-(2**15), 2**15 - 1))
    def move(self, x: int, y: int) -> None:
        self.machine.move(x, y)
        self._sent(MSG_CURSOR_MOVE)

    @rule()
    def hide(self) -> None:
        self.machine.hide()
        self._sent(MSG_CURSOR_HIDE)

    @rule(visible=st.booleans())
    def set_without_shape(self, visible: bool) -> None:
        self.machine.set(1, 2, visible, None)
        self._sent(MSG_CURSOR_SET)

    @rule(generation=st.sampled_from([0, 1, 2]), cut=cuts)
    def ack_sync(self, generation: int, cut: int) -> None:
        assert feed(self.machine, mini(MSGC_ACK_SYNC, struct.pack("<I", generation)), cut) == []
        self.synced = generation == self.generation

    @rule(count=st.integers(1, 3))
    def ack(self, count: int) -> None:
        assert feed(self.machine, mini(MSGC_ACK) * count, 1) == []
        if self.synced:
            self.unacked = max(0, self.unacked - count * self.window)

    @rule(body=st.binary(max_size=8))
    def unknown_type_is_remote_error(self, body: bytes) -> None:
        probe = CursorChannel(mini_header=True)
        probe.receive_data(mini(101, body))  # the cursor client has no messages of its own
        with pytest.raises(RemoteProtocolError):
            probe.next_event()

    @invariant()
    def window_as_modelled(self) -> None:
        assert self.machine.unacked == self.unacked
        assert self.machine.may_send == (self.unacked <= 2 * self.window)


TestCursorMachine = CursorMachine.TestCase
TestCursorMachine.settings = SETTINGS


# -- playback --------------------------------------------------------------------------------------


class PlaybackMachine(RuleBasedStateMachine):
    @initialize(
        opus=st.booleans(), volume=st.booleans(), latency=st.booleans(), compression=st.booleans()
    )
    def setup(self, opus: bool, volume: bool, latency: bool, compression: bool) -> None:
        # spice-protocol: PLAYBACK_CAP_CELT_0_5_1 0, VOLUME 1, LATENCY 2, OPUS 3.
        caps = [c for c, on in ((1, volume), (2, latency), (3, opus)) if on]
        self.caps = set(caps)
        self.machine = PlaybackChannel(
            mini_header=True, client_caps=CapabilitySet.of(*caps), compression=compression
        )
        self.opus = opus and compression
        self.machine.start_link(0)
        ((msg_type, body),) = parse_out(self.machine)
        assert msg_type == MSG_PLAYBACK_MODE
        self.mode = struct.unpack("<IH", body)[1]
        assert self.mode == (MODE_OPUS if self.opus else MODE_RAW)
        self.playing = False

    @rule(freq=st.sampled_from([48000, 44100, 22050]), channels=st.integers(1, 2))
    def start(self, freq: int, channels: int) -> None:
        if self.playing:
            with pytest.raises(LocalProtocolError):
                self.machine.start(frequency=freq, channels=channels, mm_time=1)
            assert parse_out(self.machine) == []
            return
        mode = self.machine.start(frequency=freq, channels=channels, mm_time=1)
        out = parse_out(self.machine)
        # Opus only at 48 kHz here (spice-gtk and the reference server agree on that rate).
        expected_mode = MODE_OPUS if self.opus and freq == 48000 else MODE_RAW
        assert mode == expected_mode
        types = [t for t, _ in out]
        if expected_mode != self.mode:
            assert types == [MSG_PLAYBACK_MODE, MSG_PLAYBACK_START]
            assert struct.unpack("<IH", out[0][1])[1] == expected_mode
        else:
            assert types == [MSG_PLAYBACK_START]
        # SpiceMsgPlaybackStart: uint32 channels, uint16 format, uint32 frequency, uint32 time.
        assert struct.unpack("<IHII", out[-1][1]) == (channels, 1, freq, 1)
        self.mode = expected_mode
        self.playing = True

    @rule(payload=st.binary(max_size=64), now=st.integers(0, 2**32 - 1))
    def data(self, payload: bytes, now: int) -> None:
        if not self.playing:
            with pytest.raises(LocalProtocolError):
                self.machine.data(payload, now)
            assert parse_out(self.machine) == []
            return
        self.machine.data(payload, now)
        assert parse_out(self.machine) == [(MSG_PLAYBACK_DATA, struct.pack("<I", now) + payload)]

    @rule()
    def stop(self) -> None:
        if not self.playing:
            with pytest.raises(LocalProtocolError):
                self.machine.stop()
            assert parse_out(self.machine) == []
            return
        self.machine.stop()
        assert parse_out(self.machine) == [(MSG_PLAYBACK_STOP, b"")]
        self.playing = False

    @rule(volume=st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=2), mute=st.booleans())
    def volume_and_mute(self, volume: list[int], mute: bool) -> None:
        sent_volume = self.machine.set_volume(tuple(volume))
        sent_mute = self.machine.set_mute(mute)
        assert sent_volume == sent_mute == (1 in self.caps)
        out = parse_out(self.machine)
        if 1 in self.caps:
            # SpiceMsgAudioVolume: uint8 nchannels, uint16 volume[]; SpiceMsgAudioMute: uint8.
            assert out == [
                (MSG_PLAYBACK_VOLUME, struct.pack(f"<B{len(volume)}H", len(volume), *volume)),
                (MSG_PLAYBACK_MUTE, struct.pack("<B", mute)),
            ]
        else:
            assert out == []

    @rule(ms=st.integers(0, 2000))
    def latency(self, ms: int) -> None:
        assert self.machine.set_latency(ms) == (2 in self.caps)
        out = parse_out(self.machine)
        assert out == ([(MSG_PLAYBACK_LATENCY, struct.pack("<I", ms))] if 2 in self.caps else [])

    @rule(msg_type=st.integers(101, 110), body=st.binary(max_size=8))
    def client_sends_own_type(self, msg_type: int, body: bytes) -> None:
        """The playback client has no messages of its own: any is a remote error."""
        probe = PlaybackChannel(mini_header=True, client_caps=CapabilitySet.of())
        probe.receive_data(mini(msg_type, body))
        with pytest.raises(RemoteProtocolError):
            probe.next_event()

    @invariant()
    def playing_as_modelled(self) -> None:
        assert self.machine.playing == self.playing


TestPlaybackMachine = PlaybackMachine.TestCase
TestPlaybackMachine.settings = SETTINGS


# -- record ----------------------------------------------------------------------------------------


class RecordMachine(RuleBasedStateMachine):
    @initialize(opus_offered=st.booleans())
    def setup(self, opus_offered: bool) -> None:
        self._fresh(opus_offered)

    @precondition(lambda self: self.broken)
    @rule(opus_offered=st.booleans())
    def reconnect(self, opus_offered: bool) -> None:
        """After a protocol error the adapter closes the channel; the client links again."""
        self._fresh(opus_offered)

    def _fresh(self, opus_offered: bool) -> None:
        # spice-protocol: RECORD_CAP_VOLUME 1, OPUS 2.
        server = CapabilitySet.of(1, 2) if opus_offered else CapabilitySet.of(1)
        self.machine = RecordChannel(
            mini_header=True, client_caps=CapabilitySet.of(1, 2), server_caps=server
        )
        self.opus_offered = opus_offered
        self.recording = False
        self.channels = 2
        self.mode = MODE_RAW
        self.dropped = 0
        self.warned = False
        self.broken = False

    @precondition(lambda self: not self.broken)
    @rule(channels=st.integers(1, 2), freq=st.sampled_from([48000, 44100]))
    def server_start(self, channels: int, freq: int) -> None:
        if self.recording:
            with pytest.raises(LocalProtocolError):
                self.machine.start(frequency=freq, channels=channels)
            return
        self.machine.start(frequency=freq, channels=channels)
        # SpiceMsgRecordStart: uint32 channels, uint16 format, uint32 frequency.
        assert parse_out(self.machine) == [
            (MSG_RECORD_START, struct.pack("<IHI", channels, 1, freq))
        ]
        self.recording, self.channels, self.warned = True, channels, False

    @precondition(lambda self: not self.broken)
    @rule()
    def server_stop(self) -> None:
        if not self.recording:
            with pytest.raises(LocalProtocolError):
                self.machine.stop()
            return
        self.machine.stop()
        assert parse_out(self.machine) == [(MSG_RECORD_STOP, b"")]
        self.recording = False

    @precondition(lambda self: not self.broken)
    @rule(mode=st.sampled_from([MODE_RAW, MODE_RAW, 0, 2, MODE_OPUS, 9]), cut=cuts)
    def client_mode(self, mode: int, cut: int) -> None:
        # SpiceMsgcRecordMode: uint32 time, uint16 mode, then data.
        wire = mini(MSGC_RECORD_MODE, struct.pack("<IH", 0, mode))
        if mode == MODE_RAW or (mode == MODE_OPUS and self.opus_offered):
            assert feed(self.machine, wire, cut) == []
            self.mode = mode
        else:
            with pytest.raises(RemoteProtocolError):
                feed(self.machine, wire, cut)
            self.broken = True

    @precondition(lambda self: not self.broken)
    @rule(time=st.integers(0, 2**32 - 1), cut=cuts)
    def start_mark(self, time: int, cut: int) -> None:
        events = feed(self.machine, mini(MSGC_RECORD_START_MARK, struct.pack("<I", time)), cut)
        assert events == [RecordStarted(time, self.mode)]

    @precondition(lambda self: not self.broken and self.mode == MODE_RAW)
    @rule(frames=st.integers(0, 300), odd=st.booleans(), time=st.integers(0, 99), cut=cuts)
    def raw_data(self, frames: int, odd: bool, time: int, cut: int) -> None:
        pcm = bytes(range(256)) * (frames * 2 * self.channels // 256 + 1)
        pcm = pcm[: frames * 2 * self.channels + (1 if odd else 0)]
        wire = mini(MSGC_RECORD_DATA, struct.pack("<I", time) + pcm)
        if not self.recording:
            events = feed(self.machine, wire, cut)
            self.dropped += 1
            assert events == ([] if self.warned else [DataWhileStopped(self.dropped)])
            self.warned = True
            return
        if odd:
            with pytest.raises(RemoteProtocolError):
                feed(self.machine, wire, cut)
            self.broken = True
            return
        events = feed(self.machine, wire, cut)
        assert events == (
            [RecordFrames(time, pcm, self.machine.frequency, self.channels)] if pcm else []
        )

    @precondition(lambda self: not self.broken and self.recording)
    @rule()
    def oversized_frame(self) -> None:
        wire = mini(MSGC_RECORD_DATA, bytes(4 + MAX_FRAME_BYTES + 4))
        with pytest.raises(RemoteProtocolError):
            feed(self.machine, wire, 0)
        self.broken = True

    @precondition(lambda self: not self.broken)
    @rule(reason=st.integers(0, 10))
    def disconnecting(self, reason: int) -> None:
        # SpiceMsgcDisconnecting: uint64 time_stamp, uint32 reason.
        with pytest.raises(ChannelClosed):
            feed(self.machine, mini(MSGC_DISCONNECTING, struct.pack("<QI", 0, reason)), 0)
        self.broken = True

    @invariant()
    def state_as_modelled(self) -> None:
        assert self.machine.recording == self.recording
        assert self.machine.dropped == self.dropped
        # Nothing is held beyond one message's worth.
        assert self.machine.buffered == 0


TestRecordMachine = RecordMachine.TestCase
TestRecordMachine.settings = SETTINGS
