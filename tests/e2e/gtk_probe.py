"""Scriptable SPICE client built on spice-gtk's GObject-introspection bindings.

This program runs under the *system* interpreter (``/usr/bin/python3`` with python3-gi and
gir1.2-spiceclientglib-2.0), never inside the project virtualenv. It opens a
``SpiceClientGLib.Session`` to ``--host``/``--port`` (optionally ``--tls-port``,
``--ca-file``, ``--password``), connects every main, display, inputs and cursor channel the
server announces, and drives a GLib main loop while speaking JSON lines: every signal of
interest becomes one JSON object on stdout (key ``"event"``, plus ``"t"``: the probe's own
``time.monotonic()`` at emission; ``started`` is emitted just before the session connects),
and commands arrive as one JSON object per line on stdin (key ``"cmd"``, optional ``"id"``
echoed back in the reply). Every command is answered by its result event (``ok``,
``screenshot``, ``flushed``, ``read-bytes``, ``region-stats``, ``bye``) or by an ``error``
event; exceptions raised in GLib callbacks are reported as ``error`` events too. For
benchmarks, ``watch_region`` records what the client shows in a rectangle to a file and
``watch_streams`` reports spice-gtk's stream create/destroy/clip debug messages as events;
``key_echo`` times a key press to the change it causes at one pixel, and ``watch_marker`` /
``marker_stats`` count the frames an application numbers in a strip of blocks
(``benchmarks/latency.py``). The agent: ``clipboard_grab`` / ``clipboard_request`` /
``clipboard_release`` drive spice-gtk's clipboard API (the server's grabs, requests and data
come back as ``clipboard-grab``, ``clipboard-request``, ``clipboard-data`` and
``clipboard-release`` events; a request is answered from what ``clipboard_grab`` offered),
``monitor_config`` sends a MONITORS_CONFIG for one display, and ``file_copy`` sends files
(``file-copy-progress``, then ``file-copy-done``), optionally cancelling after some bytes.
``monitors`` reads a display channel's ``monitors`` and ``monitors-max`` properties (the heads
spice-gtk opens a window for; ``monitors-changed`` events follow each change). Port channels:
``port-opened`` (name, opened), ``port-data`` (hex) and ``port-event`` events; ``port_write``
is ``spice_port_channel_write_async`` (``port-written``), ``port_event`` sends a PORT_EVENT.
A watchdog (``--timeout``) prints ``{"event": "watchdog"}`` and exits with status 3 so a hung
connection fails a test in bounded time; EOF on stdin or ``{"cmd": "quit"}`` disconnects and
exits with status 0. The pytest-side wrapper is ``tests/e2e/gtk_client.py``.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import hashlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gi

gi.require_version("SpiceClientGLib", "2.0")
from gi.repository import GLib, GObject
from gi.repository import SpiceClientGLib as Spice

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_WATCHDOG = 3

#: Channel types whose ``connect`` we call; playback/record/usbredir/... are left alone.
CONNECTED_TYPES = frozenset({"main", "display", "inputs", "cursor", "port"})
#: Connected too with ``--audio``.
AUDIO_TYPES = frozenset({"playback", "record"})

JsonDict = dict[str, Any]


class CommandError(Exception):
    """A command could not be carried out; reported as an ``error`` event."""


@dataclass
class Primary:
    """The latest primary surface announced by one display channel."""

    format: int
    width: int
    height: int
    stride: int
    pointer: int

    @property
    def size(self) -> int:
        return self.stride * self.height


class RegionWatch:
    """A rectangle of one display whose shown pixels are sampled to a file (``watch_region``)."""

    def __init__(
        self, display: int, x: int, y: int, w: int, h: int, step: int, path: str, quiet: bool
    ) -> None:
        if w <= 0 or h <= 0 or step <= 0:
            raise ValueError("w, h and step must be positive")
        self.display = display
        self.x, self.y, self.w, self.h, self.step = x, y, w, h, step
        self.quiet = quiet
        self.out = open(path, "wb")  # noqa: SIM115  (closed by close())
        self.invalidates = 0
        self.samples = 0
        self.idle: int | None = None
        self.record_bytes = 8 + len(range(0, h, step)) * len(range(0, w, step)) * 4

    def hit(self, x: int, y: int, w: int, h: int) -> bool:
        return x < self.x + self.w and self.x < x + w and y < self.y + self.h and self.y < y + h

    def sample(self, primary: Primary) -> None:
        import struct

        import numpy as np

        if self.y + self.h > primary.height or self.x + self.w > primary.width:
            return
        buf = (ctypes.c_uint8 * primary.size).from_address(primary.pointer)
        rows = np.frombuffer(buf, np.uint8).reshape(primary.height, primary.stride)
        area = rows[self.y : self.y + self.h, self.x * 4 : (self.x + self.w) * 4]
        grid = area.reshape(self.h, self.w, 4)[:: self.step, :: self.step]
        self.out.write(struct.pack("<d", time.monotonic()) + grid.tobytes())
        self.samples += 1

    def close(self) -> None:
        if self.idle is not None:
            GLib.source_remove(self.idle)
            self.idle = None
        self.out.close()


class EchoWait:
    """A key pressed by ``key_echo``: waiting for pixel (x, y) of a display to change."""

    def __init__(self, reply: JsonDict, display: int, x: int, y: int, before: int | None) -> None:
        self.reply = reply
        self.display = display
        self.x, self.y = x, y
        self.before = before
        self.t0 = 0.0
        self.timer: int | None = None


class MarkerWatch:
    """A strip of ``bits`` square blocks (``block`` pixels, black = 0, white = 1, least
    significant bit first) that the application draws into its frames as a frame counter
    (``watch_marker``): every change of the value the client shows is recorded with its time."""

    LIMIT = 200_000

    def __init__(self, display: int, x: int, y: int, bits: int, block: int) -> None:
        if not 0 < bits <= 32 or block <= 0:
            raise ValueError("bits must be 1..32 and block positive")
        self.display = display
        self.x, self.y, self.bits, self.block = x, y, bits, block
        self.w, self.h = bits * block, block
        self.value: int | None = None
        self.changes: list[tuple[float, int]] = []
        self.invalidates = 0

    def hit(self, x: int, y: int, w: int, h: int) -> bool:
        return x < self.x + self.w and self.x < x + w and y < self.y + self.h and self.y < y + h

    def read(self, primary: Primary) -> None:
        if self.y + self.h > primary.height or self.x + self.w > primary.width:
            return
        cy = self.y + self.block // 2
        row = ctypes.string_at(primary.pointer + cy * primary.stride + self.x * 4, self.w * 4)
        value = 0
        for k in range(self.bits):
            i = (k * self.block + self.block // 2) * 4
            if row[i] + 2 * row[i + 1] + row[i + 2] > 512:  # B + 2G + R: brighter than mid-grey
                value |= 1 << k
        if value != self.value:
            self.value = value
            if len(self.changes) < self.LIMIT:
                self.changes.append((time.monotonic(), value))


def emit(event: str, **fields: Any) -> None:
    """Write one JSON event line to stdout and flush it; exit quietly if the reader is gone.

    Every event carries ``"t"``: this process's ``time.monotonic()`` when it was emitted, so
    intervals between events (e.g. ``started`` -> first ``primary-create``) can be measured
    without the pipe's or the reader's scheduling delays.
    """
    line = json.dumps({"event": event, **fields, "t": time.monotonic()}, default=repr) + "\n"
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        os._exit(EXIT_FATAL)


def report_exception(where: str, exc: BaseException, **extra: Any) -> None:
    """Report an unexpected exception as an ``error`` event (with traceback)."""
    emit(
        "error",
        **extra,
        where=where,
        message=f"{type(exc).__name__}: {exc}",
        traceback="".join(traceback.format_exception(exc)),
    )


def guarded(where: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a GLib callback so an exception becomes an ``error`` event instead of a log line."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any) -> Any:
            try:
                return func(*args)
            except SystemExit:
                raise
            except Exception as exc:
                report_exception(where, exc)
                return None

        return wrapper

    return decorate


def gconnect(obj: Any, name: str, callback: Callable[..., Any]) -> int:
    """Attach a GObject signal; SPICE's own ``connect()`` methods hide GObject's."""
    return int(GObject.Object.connect(obj, name, guarded(name)(callback)))


def channel_type_name(channel: Any) -> str:
    return str(Spice.Channel.type_to_string(channel.get_property("channel-type")))


def channel_id(channel: Any) -> int:
    return int(channel.get_property("channel-id"))


def enum_nick(value: Any) -> str:
    nick = getattr(value, "value_nick", None)
    return str(nick) if nick is not None else str(int(value))


class Probe:
    """One SPICE session plus the JSON-lines command/event plumbing around it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.exit_code = EXIT_OK
        self.session: Any = Spice.Session()
        self.channels: dict[tuple[str, int], Any] = {}
        self.playback_pcm = bytearray()
        self.playback_packets = 0
        self.playback_streams = 0
        self.opened: set[tuple[str, int]] = set()
        #: Buffers of port writes still in flight (spice-gtk reads them until done).
        self.port_buffers: list[bytes] = []
        self.primaries: dict[int, Primary] = {}
        self.stdin_buffer = b""
        self.stdin_watch: int | None = None
        self.shutting_down = False
        self.region: RegionWatch | None = None
        self.echo_waits: list[EchoWait] = []
        self.marker: MarkerWatch | None = None
        self.stream_log_handler: int | None = None
        self.copy_watch: JsonDict = {}
        self.copy_cancellable: Any = None
        #: What ``clipboard_grab`` offered per selection: {type: bytes}.
        self.clipboard: dict[int, dict[int, bytes]] = {}

    # ----------------------------------------------------------------- setup
    def configure(self) -> None:
        session = self.session
        args = self.args
        session.set_property("host", args.host)
        if args.port is not None:
            session.set_property("port", str(args.port))
        if args.tls_port is not None:
            session.set_property("tls-port", str(args.tls_port))
        if args.password is not None:
            session.set_property("password", args.password)
        if args.username is not None:
            session.set_property("username", args.username)
        if args.ca_file is not None:
            session.set_property("ca-file", args.ca_file)
        if args.cert_subject is not None:
            session.set_property("cert-subject", args.cert_subject)
        if args.secure_channels:
            session.set_property("secure-channels", args.secure_channels)
        # --audio: spice-gtk's audio object too (GStreamer); the playback and record channels'
        # signals fire either way, and the probe records what they carry.
        session.set_property("enable-audio", bool(args.audio))
        session.set_property("enable-usbredir", False)
        session.set_property("enable-smartcard", False)
        gconnect(session, "channel-new", self.on_channel_new)
        gconnect(session, "channel-destroy", self.on_channel_destroy)
        gconnect(session, "disconnected", self.on_disconnected)

    def start(self) -> int:
        self.configure()
        fd = sys.stdin.fileno()
        os.set_blocking(fd, False)
        stdin_channel = GLib.IOChannel.unix_new(fd)
        self.stdin_watch = GLib.io_add_watch(
            stdin_channel,
            GLib.PRIORITY_DEFAULT,
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            guarded("stdin")(self.on_stdin),
        )
        if self.args.timeout > 0:
            GLib.timeout_add(int(self.args.timeout * 1000), self.on_watchdog)
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, signum, self.on_unix_signal, signum)
        emit("started", pid=os.getpid(), spice_gtk=str(Spice.util_get_version_string()))
        if not Spice.Session.connect(self.session):
            emit("error", where="session", message="spice_session_connect() returned FALSE")
            return EXIT_FATAL
        self.loop.run()
        return self.exit_code

    # -------------------------------------------------------------- session
    def on_channel_new(self, _session: Any, channel: Any) -> None:
        kind = channel_type_name(channel)
        ident = channel_id(channel)
        emit("channel-new", type=kind, id=ident)
        if kind not in CONNECTED_TYPES and not (self.args.audio and kind in AUDIO_TYPES):
            return
        self.channels[(kind, ident)] = channel
        gconnect(channel, "channel-event", self.on_channel_event)
        if kind == "main":
            gconnect(channel, "main-mouse-update", self.on_mouse_update)
            gconnect(channel, "main-agent-update", self.on_agent_update)
            gconnect(channel, "main-clipboard-selection-grab", self.on_clipboard_grab)
            gconnect(channel, "main-clipboard-selection-request", self.on_clipboard_request)
            gconnect(channel, "main-clipboard-selection", self.on_clipboard_data)
            gconnect(channel, "main-clipboard-selection-release", self.on_clipboard_release)
            gconnect(channel, "new-file-transfer", self.on_new_file_transfer)
        elif kind == "display":
            gconnect(channel, "notify::monitors", self.on_monitors)
            gconnect(channel, "display-primary-create", self.on_primary_create)
            gconnect(channel, "display-primary-destroy", self.on_primary_destroy)
            gconnect(channel, "display-invalidate", self.on_invalidate)
            gconnect(channel, "display-mark", self.on_mark)
        elif kind == "inputs":
            gconnect(channel, "inputs-modifiers", self.on_inputs_modifiers)
        elif kind == "port":
            gconnect(channel, "port-data", self.on_port_data)
            gconnect(channel, "port-event", self.on_port_event)
            gconnect(channel, "notify::port-opened", self.on_port_opened)
        elif kind == "cursor":
            gconnect(channel, "cursor-set", self.on_cursor_set)
            gconnect(channel, "cursor-move", self.on_cursor_move)
            gconnect(channel, "cursor-hide", self.on_cursor_hide)
            gconnect(channel, "cursor-reset", self.on_cursor_reset)
        elif kind == "playback":
            gconnect(channel, "playback-start", self.on_playback_start)
            gconnect(channel, "playback-data", self.on_playback_data)
            gconnect(channel, "playback-stop", self.on_playback_stop)
        elif kind == "record":
            gconnect(channel, "record-start", self.on_record_start)
            gconnect(channel, "record-stop", self.on_record_stop)
        if kind in AUDIO_TYPES:
            for prop in ("volume", "mute"):
                gconnect(channel, f"notify::{prop}", self.on_audio_notify)
        if kind != "main" and not Spice.Channel.connect(channel):
            emit(
                "error",
                where="channel-connect",
                channel=kind,
                id=ident,
                message="spice_channel_connect() returned FALSE",
            )

    # -------------------------------------------------------------- audio
    def on_playback_start(self, _channel: Any, fmt: int, channels: int, rate: int) -> None:
        self.playback_pcm = bytearray()
        self.playback_packets = 0
        emit("playback-start", format=fmt, channels=channels, rate=rate)

    def on_playback_data(self, _channel: Any, data: int, size: int) -> None:
        if self.playback_packets == 0:
            emit("playback-first-data", size=size)
        self.playback_packets += 1
        self.playback_pcm += ctypes.string_at(data, size)

    def on_playback_stop(self, _channel: Any) -> None:
        self.playback_streams += 1
        if self.args.audio_dir:  # only where a test asked for the PCM (never the cwd)
            path = os.path.join(self.args.audio_dir, f"playback-{self.playback_streams}.pcm")
            with open(path, "wb") as out:
                out.write(self.playback_pcm)
        emit(
            "playback-stop",
            bytes=len(self.playback_pcm),
            packets=self.playback_packets,
            file=path,
        )

    def on_record_start(self, channel: Any, fmt: int, channels: int, rate: int) -> None:
        self.channels[("record", channel_id(channel))] = channel
        emit("record-start", format=fmt, channels=channels, rate=rate)

    def on_record_stop(self, _channel: Any) -> None:
        emit("record-stop")

    def on_audio_notify(self, channel: Any, spec: Any) -> None:
        value = channel.get_property(spec.name)
        if spec.name == "volume":
            # A pointer to ``nchannels`` guint16 levels (GI hands it over as an int).
            count = channel.get_property("nchannels")
            value = list((ctypes.c_uint16 * count).from_address(value)) if value else None
        emit("audio-" + spec.name, type=channel_type_name(channel), value=value)

    def cmd_record_send(self, command: JsonDict, reply: JsonDict) -> None:
        """Send the S16 PCM in ``file`` from the microphone, as spice-gtk's audio backend
        does (spice_record_channel_send_data in pieces of ``chunk`` bytes)."""
        channel = self.channels.get(("record", 0))
        if channel is None:
            raise CommandError("no record channel")
        with open(command["file"], "rb") as src:
            pcm = src.read()
        chunk = int(command.get("chunk", 1920))
        for offset in range(0, len(pcm), chunk):
            piece = ctypes.create_string_buffer(pcm[offset : offset + chunk])
            size = min(chunk, len(pcm) - offset)
            Spice.RecordChannel.send_data(channel, ctypes.addressof(piece), size, 0)
        emit("ok", **reply, bytes=len(pcm))

    def on_channel_destroy(self, _session: Any, channel: Any) -> None:
        kind = channel_type_name(channel)
        ident = channel_id(channel)
        self.channels.pop((kind, ident), None)
        self.opened.discard((kind, ident))
        if kind == "display":
            self.primaries.pop(ident, None)
        emit("channel-destroy", type=kind, id=ident)

    def on_disconnected(self, _session: Any) -> None:
        emit("disconnected")
        if self.shutting_down:
            self.loop.quit()

    def on_channel_event(self, channel: Any, event: Any) -> None:
        kind = channel_type_name(channel)
        ident = channel_id(channel)
        name = enum_nick(event)
        if name == "opened":
            self.opened.add((kind, ident))
        elif name != "switching":
            self.opened.discard((kind, ident))
        fields: JsonDict = {"channel": kind, "id": ident, "name": name}
        error = Spice.Channel.get_error(channel)
        if error is not None:
            fields["message"] = error.message
        emit("channel-event", **fields)

    # ----------------------------------------------------------------- main
    def on_mouse_update(self, channel: Any) -> None:
        emit("mouse-mode", mode=int(channel.get_property("mouse-mode")))

    def on_agent_update(self, channel: Any) -> None:
        emit(
            "main-agent-update",
            connected=bool(channel.get_property("agent-connected")),
            caps0=int(channel.get_property("agent-caps-0")),
        )

    def on_clipboard_grab(self, _channel: Any, selection: int, types: Any, ntypes: int) -> bool:
        if isinstance(types, (list, tuple)):  # GI reads the annotated guint32 array itself
            words = [int(t) for t in types][:ntypes]
        else:
            words = list((ctypes.c_uint32 * ntypes).from_address(int(types))) if ntypes else []
        emit("clipboard-grab", selection=selection, types=words)
        return True

    def on_clipboard_request(self, channel: Any, selection: int, type_: int) -> bool:
        data = self.clipboard.get(selection, {}).get(type_)
        emit("clipboard-request", selection=selection, type=type_, answered=data is not None)
        if data is None:
            return False
        channel.clipboard_selection_notify(selection, type_, data)
        return True

    def on_clipboard_data(
        self, _channel: Any, selection: int, type_: int, data: Any, size: int
    ) -> None:
        if isinstance(data, (bytes, bytearray, list)):  # GI reads the annotated array itself
            raw = bytes(data)[:size]
        else:
            raw = ctypes.string_at(int(data), size) if size else b""
        emit(
            "clipboard-data",
            selection=selection,
            type=type_,
            size=size,
            sha256=hashlib.sha256(raw).hexdigest(),
            hex=raw.hex() if size <= 4096 else None,
        )

    def on_clipboard_release(self, _channel: Any, selection: int) -> None:
        emit("clipboard-release", selection=selection)

    def on_new_file_transfer(self, _channel: Any, task: Any) -> None:
        emit("file-transfer-new", total=int(task.get_property("total-bytes")))
        gconnect(task, "notify::transferred-bytes", self.on_transfer_progress)

    def on_transfer_progress(self, task: Any, _pspec: Any) -> None:
        watch = self.copy_watch
        current = int(task.get_property("transferred-bytes"))
        total = int(task.get_property("total-bytes"))
        cancel_at, last = watch.get("cancel_at"), int(watch.get("last", -1))
        if cancel_at is not None and current >= int(cancel_at) > last:
            emit("file-copy-cancelling", current=current, total=total)
            task.cancel()
        step = max(total // 8, 1)
        if current // step != last // step or current == total:
            emit("file-copy-progress", current=current, total=total)
        watch["last"] = current

    # -------------------------------------------------------------- display
    def on_primary_create(
        self,
        channel: Any,
        fmt: int,
        width: int,
        height: int,
        stride: int,
        shmid: int,
        pointer: int | None,
    ) -> None:
        ident = channel_id(channel)
        if pointer:
            self.primaries[ident] = Primary(fmt, width, height, stride, int(pointer))
        emit(
            "primary-create",
            display=ident,
            format=fmt,
            width=width,
            height=height,
            stride=stride,
            shmid=shmid,
            has_data=bool(pointer),
        )

    def on_primary_destroy(self, channel: Any) -> None:
        ident = channel_id(channel)
        self.primaries.pop(ident, None)
        emit("primary-destroy", display=ident)

    def on_invalidate(self, channel: Any, x: int, y: int, w: int, h: int) -> None:
        ident = channel_id(channel)
        if (self.echo_waits or self.marker is not None) and self.check_echo_and_marker(
            ident, x, y, w, h
        ):
            return
        region = self.region
        if region is not None and region.display == ident and region.hit(x, y, w, h):
            region.invalidates += 1
            if not region.quiet:
                emit("invalidate", display=ident, x=x, y=y, w=w, h=h)
            if region.idle is None:
                # Sample once the burst of drawing is done: just above GTK's redraw priority,
                # where a GTK client would paint what it got.
                region.idle = GLib.idle_add(self.sample_region, priority=GLib.PRIORITY_HIGH_IDLE)
            return
        emit("invalidate", display=ident, x=x, y=y, w=w, h=h)

    def on_mark(self, channel: Any, mark: int) -> None:
        emit("mark", display=channel_id(channel), mark=mark)

    # --------------------------------------------------------------- inputs
    def on_inputs_modifiers(self, channel: Any) -> None:
        emit("inputs-modifiers", modifiers=int(channel.get_property("key-modifiers")))

    # --------------------------------------------------------------- cursor
    def on_cursor_set(
        self,
        channel: Any,
        width: int,
        height: int,
        hot_x: int,
        hot_y: int,
        pointer: int | None,
    ) -> None:
        fields: JsonDict = {"width": width, "height": height, "hot_x": hot_x, "hot_y": hot_y}
        if pointer:
            data = ctypes.string_at(int(pointer), width * height * 4)
            fields["rgba_sha256"] = hashlib.sha256(data).hexdigest()
            fields["size"] = len(data)
        else:
            fields["rgba_sha256"] = None
        # SpiceCursorChannel:cursor (SpiceCursorShape) is not used: its fields read back
        # misaligned through GI in spice-gtk 0.42 (type is garbage, width holds hot_x...).
        emit("cursor-set", **fields)

    def on_cursor_move(self, _channel: Any, x: int, y: int) -> None:
        emit("cursor-move", x=x, y=y)

    def on_cursor_hide(self, _channel: Any) -> None:
        emit("cursor-hide")

    def on_cursor_reset(self, _channel: Any) -> None:
        emit("cursor-reset")

    # ------------------------------------------------------------- commands
    def on_stdin(self, _source: Any, _condition: Any) -> bool:
        while True:
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:
                return True
            if not chunk:
                self.stdin_watch = None
                self.shutdown(EXIT_OK, reason="eof")
                return False
            self.stdin_buffer += chunk
            while b"\n" in self.stdin_buffer:
                line, self.stdin_buffer = self.stdin_buffer.split(b"\n", 1)
                if line.strip():
                    self.handle_line(line)

    def handle_line(self, line: bytes) -> None:
        try:
            command = json.loads(line)
        except ValueError as exc:
            emit("error", cmd=None, message=f"invalid JSON command: {exc}")
            return
        if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
            emit("error", cmd=None, message=f"command must be an object with 'cmd': {command!r}")
            return
        name: str = command["cmd"]
        reply: JsonDict = {"cmd": name}
        if "id" in command:
            reply["id"] = command["id"]
        handler = getattr(self, "cmd_" + name, None)
        if handler is None:
            emit("error", **reply, message=f"unknown command {name!r}")
            return
        try:
            handler(command, reply)
        except CommandError as exc:
            emit("error", **reply, message=str(exc))
        except (KeyError, TypeError, ValueError) as exc:
            emit("error", **reply, message=f"bad arguments: {type(exc).__name__}: {exc}")
        except Exception as exc:
            report_exception("command", exc, **reply)

    def channel(self, kind: str, ident: int = 0) -> Any:
        channel = self.channels.get((kind, ident))
        if channel is None:
            raise CommandError(f"no {kind} channel {ident}")
        if (kind, ident) not in self.opened:
            raise CommandError(f"{kind} channel {ident} is not open")
        return channel

    def inputs(self) -> Any:
        return self.channel("inputs", 0)

    # ---------------------------------------------------------- monitors, ports
    def read_monitors(self, channel: Any) -> list[JsonDict]:
        """``SpiceDisplayChannel:monitors`` (a GArray of SpiceDisplayMonitorConfig: six guints
        id, surface_id, x, y, width, height), read through libgobject: PyGObject cannot copy
        that array's elements."""
        gobject = ctypes.CDLL("libgobject-2.0.so.0")
        glib = ctypes.CDLL("libglib-2.0.so.0")
        gobject.g_object_get.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        glib.g_array_unref.argtypes = [ctypes.c_void_p]
        # A PyGObject wrapper is PyObject_HEAD (16 bytes) then the GObject pointer.
        pointer = ctypes.c_void_p.from_address(id(channel) + 16).value
        array = ctypes.c_void_p()
        gobject.g_object_get(pointer, b"monitors", ctypes.byref(array), None)
        if not array.value:
            return []
        data = ctypes.c_void_p.from_address(array.value).value
        count = ctypes.c_uint.from_address(array.value + ctypes.sizeof(ctypes.c_void_p)).value
        fields = ("id", "surface_id", "x", "y", "width", "height")
        out = []
        for i in range(count):
            values = (ctypes.c_uint * 6).from_address(data + 24 * i)
            out.append(dict(zip(fields, values[:], strict=True)))
        glib.g_array_unref(array)
        return out

    def on_monitors(self, channel: Any, _pspec: Any) -> None:
        emit(
            "monitors-changed",
            id=channel_id(channel),
            monitors=self.read_monitors(channel),
            max=channel.get_property("monitors-max"),
        )

    def cmd_monitors(self, command: JsonDict, reply: JsonDict) -> None:
        channel = self.channel("display", int(command.get("display", 0)))
        emit(
            "monitors",
            **reply,
            monitors=self.read_monitors(channel),
            max=channel.get_property("monitors-max"),
        )

    def on_port_opened(self, channel: Any, _pspec: Any) -> None:
        emit(
            "port-opened",
            id=channel_id(channel),
            name=channel.get_property("port-name"),
            opened=channel.get_property("port-opened"),
        )

    def on_port_data(self, channel: Any, data: int, size: int) -> None:
        emit("port-data", id=channel_id(channel), data=ctypes.string_at(data, size).hex())

    def on_port_event(self, channel: Any, event: int) -> None:
        emit("port-event", id=channel_id(channel), port_event=int(event))

    def cmd_port_write(self, command: JsonDict, reply: JsonDict) -> None:
        channel = self.channel("port", int(command.get("port", 0)))
        data = bytes.fromhex(str(command["data"]))
        # spice-gtk sends from the caller's buffer until the write completes: keep it alive.
        self.port_buffers.append(data)

        @guarded("port_write")
        def done(source: Any, result: Any, *_data: Any) -> None:
            self.port_buffers.remove(data)
            try:
                written = source.write_finish(result)
            except GLib.Error as exc:
                emit("error", **reply, message=f"port write failed: {exc.message}")
                return
            emit("port-written", **reply, size=int(written))

        channel.write_async(data, None, done)

    def cmd_port_event(self, command: JsonDict, reply: JsonDict) -> None:
        channel = self.channel("port", int(command.get("port", 0)))
        channel.event(int(command["event"]))
        emit("ok", **reply)

    def cmd_screenshot(self, command: JsonDict, reply: JsonDict) -> None:
        path = str(command["path"])
        ident = int(command.get("display", 0))
        primary = self.primaries.get(ident)
        if primary is None:
            raise CommandError(f"display {ident} has no primary surface")
        data = ctypes.string_at(primary.pointer, primary.size)
        with open(path, "wb") as out:
            out.write(data)
        emit(
            "screenshot",
            **reply,
            path=path,
            display=ident,
            width=primary.width,
            height=primary.height,
            stride=primary.stride,
            format=primary.format,
        )

    def cmd_key_press(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().key_press(int(command["scancode"]))
        emit("ok", **reply)

    def cmd_key_release(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().key_release(int(command["scancode"]))
        emit("ok", **reply)

    def cmd_key_press_and_release(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().key_press_and_release(int(command["scancode"]))
        emit("ok", **reply)

    def cmd_motion(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().motion(int(command["dx"]), int(command["dy"]), int(command.get("buttons", 0)))
        emit("ok", **reply)

    def cmd_position(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().position(
            int(command["x"]),
            int(command["y"]),
            int(command.get("display", 0)),
            int(command.get("buttons", 0)),
        )
        emit("ok", **reply)

    def cmd_button_press(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().button_press(int(command["button"]), int(command.get("buttons", 0)))
        emit("ok", **reply)

    def cmd_button_release(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().button_release(int(command["button"]), int(command.get("buttons", 0)))
        emit("ok", **reply)

    def cmd_set_key_locks(self, command: JsonDict, reply: JsonDict) -> None:
        self.inputs().set_key_locks(int(command["locks"]))
        emit("ok", **reply)

    def cmd_request_mouse_mode(self, command: JsonDict, reply: JsonDict) -> None:
        main = self.channel("main", 0)
        main.request_mouse_mode(int(command["mode"]))
        emit("ok", **reply)

    def cmd_flush(self, command: JsonDict, reply: JsonDict) -> None:
        kind = str(command.get("channel", "inputs"))
        channel = self.channel(kind, int(command.get("channel_id", 0)))

        @guarded("flush")
        def done(source: Any, result: Any, _data: Any) -> None:
            try:
                Spice.Channel.flush_finish(source, result)
            except GLib.Error as exc:
                emit("error", **reply, message=f"flush failed: {exc.message}")
                return
            emit("flushed", **reply, channel=kind)

        Spice.Channel.flush_async(channel, None, done, None)

    def cmd_status(self, _command: JsonDict, reply: JsonDict) -> None:
        emit(
            "status",
            **reply,
            opened=sorted(f"{kind}:{ident}" for kind, ident in self.opened),
            primaries={str(k): v.__dict__ for k, v in self.primaries.items()},
        )

    def cmd_read_bytes(self, _command: JsonDict, reply: JsonDict) -> None:
        """Bytes each connected channel has read from its socket so far (spice-gtk's
        ``SpiceChannel:total-read-bytes``, link stage included), keyed ``"TYPE:ID"``."""
        emit(
            "read-bytes",
            **reply,
            channels={
                f"{kind}:{ident}": int(channel.get_property("total-read-bytes"))
                for (kind, ident), channel in sorted(self.channels.items())
            },
        )

    def cmd_watch_region(self, command: JsonDict, reply: JsonDict) -> None:
        """Record what the client shows in a rectangle: after each burst of
        ``display-invalidate`` events that touch it, a grid of its pixels (every ``step``-th
        pixel of every ``step``-th row, BGRX, taken from the primary surface) is appended to the
        file ``path`` as one record: ``time.monotonic()`` as a little-endian double, then the
        pixels. ``quiet`` (default true) stops the ``invalidate`` events for that rectangle
        (counted instead). Needs numpy (python3-numpy). Stop with ``unwatch_region``."""
        import numpy  # noqa: F401  (fail now, not in a callback)

        if self.region is not None:
            self.region.close()
        ident = int(command.get("display", 0))
        if ident not in self.primaries:
            raise CommandError(f"display {ident} has no primary surface")
        self.region = RegionWatch(
            display=ident,
            x=int(command["x"]),
            y=int(command["y"]),
            w=int(command["w"]),
            h=int(command["h"]),
            step=int(command.get("step", 8)),
            path=str(command["path"]),
            quiet=bool(command.get("quiet", True)),
        )
        emit("ok", **reply, record_bytes=self.region.record_bytes)

    def cmd_unwatch_region(self, _command: JsonDict, reply: JsonDict) -> None:
        region = self.region
        if region is None:
            raise CommandError("no region is watched")
        self.region = None
        region.close()
        emit(
            "region-stats",
            **reply,
            invalidates=region.invalidates,
            samples=region.samples,
            record_bytes=region.record_bytes,
        )

    def sample_region(self) -> bool:
        region = self.region
        if region is None:
            return False
        region.idle = None
        primary = self.primaries.get(region.display)
        if primary is not None:
            region.sample(primary)
        return False  # GLib.SOURCE_REMOVE

    def cmd_watch_streams(self, _command: JsonDict, reply: JsonDict) -> None:
        """Turn on spice-gtk's debug messages and report the display channel's stream
        messages as events: ``stream-create`` / ``stream-destroy`` / ``stream-clip`` (with
        spice-gtk's own text), stamped like every event. Other debug messages are dropped."""
        if self.stream_log_handler is None:
            flags = GLib.LogLevelFlags.LEVEL_DEBUG | GLib.LogLevelFlags.LEVEL_INFO
            self.stream_log_handler = GLib.log_set_handler("GSpice", flags, self.on_spice_log, None)
            Spice.util_set_debug(True)
        emit("ok", **reply)

    def on_spice_log(self, _domain: Any, _level: Any, message: Any, _data: Any) -> None:
        text = str(message)
        if "stream" not in text:
            return
        for kind in ("create", "destroy", "clip"):
            if f"display_handle_stream_{kind}" in text:
                emit(f"stream-{kind}", message=text[-200:])
                return

    # ------------------------------------------------- latency (benchmarks/latency.py)
    def pixel(self, display: int, x: int, y: int) -> int | None:
        """Pixel (x, y) of a display's primary surface as 0xRRGGBB (None: no such pixel)."""
        primary = self.primaries.get(display)
        if primary is None or not (0 <= x < primary.width and 0 <= y < primary.height):
            return None
        b, g, r = ctypes.string_at(primary.pointer + y * primary.stride + x * 4, 3)
        return (r << 16) | (g << 8) | b

    def check_echo_and_marker(self, ident: int, x: int, y: int, w: int, h: int) -> bool:
        """Called on every ``display-invalidate`` while a ``key_echo`` waits or a marker is
        watched; True when the invalidate event itself should not be printed."""
        for wait in list(self.echo_waits):
            if wait.display == ident and x <= wait.x < x + w and y <= wait.y < y + h:
                colour = self.pixel(ident, wait.x, wait.y)
                if colour is not None and colour != wait.before:
                    self.finish_echo(wait, colour)
        marker = self.marker
        if marker is None or marker.display != ident:
            return False
        if marker.hit(x, y, w, h):
            marker.invalidates += 1
            primary = self.primaries.get(ident)
            if primary is not None:
                marker.read(primary)
        return True  # quiet while a marker is watched

    def finish_echo(self, wait: EchoWait, colour: int | None) -> None:
        t1 = time.monotonic()
        if wait in self.echo_waits:
            self.echo_waits.remove(wait)
        if wait.timer is not None:
            GLib.source_remove(wait.timer)
            wait.timer = None
        emit(
            "echo",
            **wait.reply,
            t0=wait.t0,
            t1=t1,
            latency_ms=(t1 - wait.t0) * 1000,
            before=wait.before,
            colour=colour,
            timed_out=colour is None,
        )

    def cmd_key_echo(self, command: JsonDict, reply: JsonDict) -> None:
        """Press (and release) ``scancode`` and answer ``echo`` once pixel (``x``, ``y``) of
        ``display`` shows a colour other than the one it had just before the press: ``t0`` is
        the probe's ``time.monotonic()`` just before the key went to spice-gtk, ``t1`` the
        ``display-invalidate`` that changed the pixel (spice-gtk has drawn it), ``latency_ms``
        the difference, ``colour`` the new 0xRRGGBB. After ``timeout`` s (default 5) the
        answer is ``echo`` with ``timed_out`` true and ``colour`` null."""
        inputs = self.inputs()
        ident = int(command.get("display", 0))
        x, y = int(command["x"]), int(command["y"])
        if ident not in self.primaries:
            raise CommandError(f"display {ident} has no primary surface")
        wait = EchoWait(reply, ident, x, y, self.pixel(ident, x, y))
        scancode = int(command["scancode"])
        wait.timer = GLib.timeout_add(
            int(float(command.get("timeout", 5.0)) * 1000), self.on_echo_timeout, wait
        )
        self.echo_waits.append(wait)
        wait.t0 = time.monotonic()
        inputs.key_press(scancode)
        if command.get("release", True):
            inputs.key_release(scancode)

    @guarded("echo-timeout")
    def on_echo_timeout(self, wait: EchoWait) -> bool:
        wait.timer = None
        self.finish_echo(wait, None)
        return False

    def cmd_watch_marker(self, command: JsonDict, reply: JsonDict) -> None:
        """Record every change of a frame counter drawn as ``bits`` blocks of ``block``
        pixels at (``x``, ``y``) (see :class:`MarkerWatch`); ``invalidate`` events are not
        printed meanwhile. Read with ``marker_stats``, stop with ``unwatch_marker``."""
        ident = int(command.get("display", 0))
        self.marker = MarkerWatch(
            ident,
            int(command["x"]),
            int(command["y"]),
            int(command.get("bits", 12)),
            int(command.get("block", 16)),
        )
        primary = self.primaries.get(ident)
        if primary is not None:
            self.marker.read(primary)
        emit("ok", **reply)

    def cmd_marker_stats(self, command: JsonDict, reply: JsonDict) -> None:
        """``marker-stats``: ``changes`` as [time.monotonic(), value] pairs since the watch
        began (or since the last ``clear``), and how many invalidates touched the strip."""
        marker = self.marker
        if marker is None:
            raise CommandError("no marker is watched")
        emit(
            "marker-stats",
            **reply,
            changes=marker.changes,
            invalidates=marker.invalidates,
            value=marker.value,
        )
        if command.get("clear"):
            marker.changes = []

    def cmd_unwatch_marker(self, _command: JsonDict, reply: JsonDict) -> None:
        self.marker = None
        emit("ok", **reply)

    # ---------------------------------------------------------------- agent
    def cmd_clipboard_grab(self, command: JsonDict, reply: JsonDict) -> None:
        """Copy in the client: ``data`` maps ClipboardType numbers (as strings) to hex bytes;
        the server's requests for them are answered from it."""
        selection = int(command.get("selection", 0))
        data = {int(t): bytes.fromhex(h) for t, h in dict(command["data"]).items()}
        self.clipboard[selection] = data
        self.channel("main").clipboard_selection_grab(selection, sorted(data))
        emit("ok", **reply)

    def cmd_clipboard_release(self, command: JsonDict, reply: JsonDict) -> None:
        selection = int(command.get("selection", 0))
        self.clipboard.pop(selection, None)
        self.channel("main").clipboard_selection_release(selection)
        emit("ok", **reply)

    def cmd_clipboard_request(self, command: JsonDict, reply: JsonDict) -> None:
        """Paste in the client: the answer comes as a ``clipboard-data`` event."""
        self.channel("main").clipboard_selection_request(
            int(command.get("selection", 0)), int(command["type"])
        )
        emit("ok", **reply)

    def cmd_monitor_config(self, command: JsonDict, reply: JsonDict) -> None:
        """The client's window for display ``display`` is now ``width`` x ``height``."""
        main = self.channel("main")
        ident = int(command.get("display", 0))
        main.update_display_enabled(ident, True, False)
        main.update_display(ident, 0, 0, int(command["width"]), int(command["height"]), False)
        if not main.send_monitor_config():
            raise CommandError("spice_main_channel_send_monitor_config() returned FALSE")
        emit("ok", **reply)

    def cmd_preferred_video_codecs(self, command: JsonDict, reply: JsonDict) -> None:
        """``spice_display_channel_change_preferred_video_codec_types`` with ``codecs``
        (codec type numbers, best first) on display ``display``."""
        display = self.channel("display", int(command.get("display", 0)))
        codecs = [int(c) for c in command["codecs"]]
        if not display.display_channel_change_preferred_video_codec_types(codecs):
            raise CommandError("change_preferred_video_codec_types() returned FALSE")
        emit("ok", **reply)

    def cmd_file_copy(self, command: JsonDict, reply: JsonDict) -> None:
        """Send ``paths`` to the agent; ``cancel_at`` cancels once that many bytes went.
        Answers ``ok`` at once; ``file-copy-done`` (``ok``, ``message``) comes at the end."""
        from gi.repository import Gio

        files = [Gio.File.new_for_path(str(path)) for path in command["paths"]]
        cancellable = Gio.Cancellable()
        # Progress is watched on the SpiceFileTransferTask (new-file-transfer): a Python
        # progress_callback here is freed after the call and crashes spice-gtk later.
        self.copy_watch = {"reply": reply, "cancel_at": command.get("cancel_at"), "last": -1}
        self.copy_cancellable = cancellable

        @guarded("file-copy-done")
        def done(source: Any, result: Any, *_data: Any) -> None:
            try:
                ok = bool(Spice.MainChannel.file_copy_finish(source, result))
                message = None
            except GLib.Error as exc:
                ok, message = False, exc.message
            emit("file-copy-done", id=reply.get("id"), ok=ok, message=message)

        self.channel("main").file_copy_async(
            files, Gio.FileCopyFlags.NONE, cancellable, None, None, done, None
        )
        emit("ok", **reply)

    def cmd_quit(self, _command: JsonDict, reply: JsonDict) -> None:
        emit("bye", **reply)
        self.shutdown(EXIT_OK, reason="quit")

    # ------------------------------------------------------------- shutdown
    def shutdown(self, code: int, reason: str) -> None:
        if self.shutting_down:
            return
        self.shutting_down = True
        self.exit_code = code
        emit("shutdown", reason=reason)
        if self.stdin_watch is not None:
            GLib.source_remove(self.stdin_watch)
            self.stdin_watch = None
        self.session.disconnect()
        # "disconnected" normally ends the loop at once; this bounds the wait if it never comes.
        GLib.timeout_add(500, self.loop.quit)

    @guarded("watchdog")
    def on_watchdog(self) -> bool:
        emit("watchdog", timeout=self.args.timeout)
        os._exit(EXIT_WATCHDOG)

    @guarded("signal")
    def on_unix_signal(self, signum: int) -> bool:
        self.shutdown(
            EXIT_FATAL if signum == signal.SIGINT else EXIT_OK,
            reason=f"signal {signal.Signals(signum).name}",
        )
        return False  # GLib.SOURCE_REMOVE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="plain TCP port")
    parser.add_argument("--tls-port", type=int, default=None)
    parser.add_argument("--password", default=None)
    parser.add_argument("--username", default=None, help="the SASL user name")
    parser.add_argument("--ca-file", default=None)
    parser.add_argument(
        "--cert-subject",
        default=None,
        help="expected server certificate subject (SpiceSession:cert-subject)",
    )
    parser.add_argument(
        "--secure-channels",
        nargs="*",
        default=None,
        help="channel names forced onto TLS, e.g. 'all' or 'main inputs'",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="overall watchdog in seconds (0 disables)"
    )
    parser.add_argument(
        "--audio", action="store_true", help="connect playback and record (enable-audio)"
    )
    parser.add_argument("--audio-dir", default=None, help="where playback PCM files go")
    args = parser.parse_args(argv)
    if args.port is None and args.tls_port is None:
        parser.error("one of --port and --tls-port is required")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.excepthook = lambda _t, exc, _tb: report_exception("excepthook", exc)
    try:
        return Probe(args).start()
    except Exception as exc:
        report_exception("main", exc)
        return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
