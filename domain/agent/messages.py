"""VD_AGENT messages (spice-protocol ``spice/vd_agent.h``) with byte-exact codecs.

On the SPICE wire the agent stream is a sequence of VDAgentMessages: a 20-byte
:class:`AgentMessageHeader` (``uint32 protocol, type; uint64 opaque; uint32 size``) and ``size``
bytes of payload, cut into AGENT_DATA bodies (:mod:`.stream`). The classes here are the
payloads, named after the header's structs; each has ``TYPE``, ``encode()`` and a ``decode()``
classmethod that raises only :class:`~.errors.AgentDecodeError`. Everything is little-endian
and packed. Both directions are encoded and decoded so that tests can play the client.

The clipboard messages carry optional prefixes whose presence is negotiated, not marked on the
wire: a 4-byte selection (``uint8 selection; uint8 reserved[3]``) when both ends announced
CLIPBOARD_SELECTION, and a ``uint32 serial`` in CLIPBOARD_GRAB when both announced
CLIPBOARD_GRAB_SERIAL; their codecs take those as keyword arguments.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any, ClassVar, Self

import attrs

from spice.domain.agent.errors import AgentDecodeError
from spice.domain.caps import CapabilitySet
from spice.domain.messages.codec import int_check, uint_check

#: ``VDAgentMessage.protocol``: the only version there is.
VD_AGENT_PROTOCOL = 1
#: The largest AGENT_DATA body either side sends (``VD_AGENT_MAX_DATA_SIZE``).
VD_AGENT_MAX_DATA_SIZE = 2048
#: Monitors accepted in one MONITORS_CONFIG, as libspice-server's ``MAX_NUM_MONITORS``.
MAX_MONITORS = 256

_u8 = uint_check(8)
_u16 = uint_check(16)
_u32 = uint_check(32)
_u64 = uint_check(64)
_i32 = int_check(32)


class AgentMessageType(enum.IntEnum):
    MOUSE_STATE = 1
    MONITORS_CONFIG = 2
    REPLY = 3
    CLIPBOARD = 4
    DISPLAY_CONFIG = 5
    ANNOUNCE_CAPABILITIES = 6
    CLIPBOARD_GRAB = 7
    CLIPBOARD_REQUEST = 8
    CLIPBOARD_RELEASE = 9
    FILE_XFER_START = 10
    FILE_XFER_STATUS = 11
    FILE_XFER_DATA = 12
    CLIENT_DISCONNECTED = 13
    MAX_CLIPBOARD = 14
    AUDIO_VOLUME_SYNC = 15
    GRAPHICS_DEVICE_INFO = 16


class AgentCap(enum.IntEnum):
    MOUSE_STATE = 0
    MONITORS_CONFIG = 1
    REPLY = 2
    CLIPBOARD = 3
    DISPLAY_CONFIG = 4
    CLIPBOARD_BY_DEMAND = 5
    CLIPBOARD_SELECTION = 6
    SPARSE_MONITORS_CONFIG = 7
    GUEST_LINEEND_LF = 8
    GUEST_LINEEND_CRLF = 9
    MAX_CLIPBOARD = 10
    AUDIO_VOLUME_SYNC = 11
    MONITORS_CONFIG_POSITION = 12
    FILE_XFER_DISABLED = 13
    FILE_XFER_DETAILED_ERRORS = 14
    GRAPHICS_DEVICE_INFO = 15
    CLIPBOARD_NO_RELEASE_ON_REGRAB = 16
    CLIPBOARD_GRAB_SERIAL = 17


class ClipboardType(enum.IntEnum):
    NONE = 0
    UTF8_TEXT = 1
    IMAGE_PNG = 2
    IMAGE_BMP = 3
    IMAGE_TIFF = 4
    IMAGE_JPG = 5
    FILE_LIST = 6


class ClipboardSelection(enum.IntEnum):
    CLIPBOARD = 0
    PRIMARY = 1
    SECONDARY = 2


class FileXferStatus(enum.IntEnum):
    CAN_SEND_DATA = 0
    CANCELLED = 1
    ERROR = 2
    SUCCESS = 3
    NOT_ENOUGH_SPACE = 4
    SESSION_LOCKED = 5
    VDAGENT_NOT_CONNECTED = 6
    DISABLED = 7


class FileXferErrorType(enum.IntEnum):
    """``VDAgentFileXferStatusError.error_type``; GLIB_IO codes are GIO's ``GIOErrorEnum``."""

    GLIB_IO = 0


#: GIO's ``G_IO_ERROR_INVALID_FILENAME``, the one detailed error spice-gtk words specially.
G_IO_ERROR_INVALID_FILENAME = 10


class ReplyError(enum.IntEnum):
    SUCCESS = 1
    ERROR = 2


class MonitorsConfigFlag(enum.IntFlag):
    USE_POS = 1
    PHYSICAL_SIZE = 2


class DisplayConfigFlag(enum.IntFlag):
    DISABLE_WALLPAPER = 1
    DISABLE_FONT_SMOOTH = 2
    DISABLE_ANIMATION = 4
    SET_COLOR_DEPTH = 8


class AgentButtonMask(enum.IntFlag):
    """``VD_AGENT_*BUTTON_MASK``: the inputs channel's mask shifted left by one."""

    LBUTTON = 1 << 1
    MBUTTON = 1 << 2
    RBUTTON = 1 << 3
    UBUTTON = 1 << 4
    DBUTTON = 1 << 5
    SBUTTON = 1 << 6
    EBUTTON = 1 << 7


def _unpack(st: struct.Struct, payload: bytes, offset: int, name: str) -> tuple[Any, ...]:
    if len(payload) < offset + st.size:
        raise AgentDecodeError(f"{name}: payload of {len(payload)} bytes, need {offset + st.size}")
    return st.unpack_from(payload, offset)


_HEADER = struct.Struct("<IIQI")
_U32 = struct.Struct("<I")
_SELECTION = struct.Struct("<B3x")


@attrs.frozen
class AgentMessageHeader:
    """``VDAgentMessage`` without its data: 20 bytes."""

    SIZE: ClassVar[int] = _HEADER.size
    type: int = attrs.field(validator=_u32)
    size: int = attrs.field(validator=_u32)
    protocol: int = attrs.field(default=VD_AGENT_PROTOCOL, validator=_u32)
    opaque: int = attrs.field(default=0, validator=_u64)

    def encode(self) -> bytes:
        return _HEADER.pack(self.protocol, self.type, self.opaque, self.size)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        protocol, type_, opaque, size = _unpack(_HEADER, data, 0, "VDAgentMessage")
        return cls(type=type_, size=size, protocol=protocol, opaque=opaque)


def _selection_prefix(selection: int, present: bool) -> bytes:
    if present:
        return _SELECTION.pack(selection)
    if selection != ClipboardSelection.CLIPBOARD:
        # Without the negotiated prefix only the CLIPBOARD selection can be expressed.
        raise ValueError(f"selection {selection} needs CLIPBOARD_SELECTION on both ends")
    return b""


def _read_selection(payload: bytes, present: bool, name: str) -> tuple[int, int]:
    """The selection and the offset after the prefix."""
    if not present:
        return ClipboardSelection.CLIPBOARD, 0
    (selection,) = _unpack(_SELECTION, payload, 0, name)
    return selection, _SELECTION.size


@attrs.frozen
class MouseState:
    TYPE: ClassVar[int] = AgentMessageType.MOUSE_STATE
    _ST: ClassVar[struct.Struct] = struct.Struct("<IIIB")
    x: int = attrs.field(validator=_u32)
    y: int = attrs.field(validator=_u32)
    buttons: int = attrs.field(validator=_u32)
    display_id: int = attrs.field(default=0, validator=_u8)

    def encode(self) -> bytes:
        return self._ST.pack(self.x, self.y, self.buttons, self.display_id)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls._ST, payload, 0, "MOUSE_STATE"))


@attrs.frozen
class MonConfig:
    """``VDAgentMonConfig``: note height before width."""

    SIZE: ClassVar[int] = 20
    width: int = attrs.field(validator=_u32)
    height: int = attrs.field(validator=_u32)
    depth: int = attrs.field(default=32, validator=_u32)
    x: int = attrs.field(default=0, validator=_i32)
    y: int = attrs.field(default=0, validator=_i32)


@attrs.frozen
class MonitorMM:
    """``VDAgentMonitorMM``: physical size in millimetres, height first."""

    width: int = attrs.field(validator=_u16)
    height: int = attrs.field(validator=_u16)


_MON = struct.Struct("<IIIii")
_MM = struct.Struct("<HH")
_MONITORS = struct.Struct("<II")


@attrs.frozen
class MonitorsConfig:
    """``VDAgentMonitorsConfig``: the client's wish for the guest's monitors (a resize).

    ``physical_sizes`` is empty or has one entry per monitor; it is on the wire only with the
    PHYSICAL_SIZE flag (a payload that sets the flag but stops short of the sizes decodes with
    none, as the reference server reads only the monitors).
    """

    TYPE: ClassVar[int] = AgentMessageType.MONITORS_CONFIG
    monitors: tuple[MonConfig, ...]
    flags: int = attrs.field(default=0, validator=_u32)
    physical_sizes: tuple[MonitorMM, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.physical_sizes and len(self.physical_sizes) != len(self.monitors):
            raise ValueError("physical_sizes must match monitors")
        if self.physical_sizes and not self.flags & MonitorsConfigFlag.PHYSICAL_SIZE:
            raise ValueError("physical_sizes need the PHYSICAL_SIZE flag")

    def encode(self) -> bytes:
        out = [_MONITORS.pack(len(self.monitors), self.flags)]
        out += [_MON.pack(m.height, m.width, m.depth, m.x, m.y) for m in self.monitors]
        out += [_MM.pack(p.height, p.width) for p in self.physical_sizes]
        return b"".join(out)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        count, flags = _unpack(_MONITORS, payload, 0, "MONITORS_CONFIG")
        if count > MAX_MONITORS:
            raise AgentDecodeError(f"MONITORS_CONFIG: {count} monitors, at most {MAX_MONITORS}")
        at = _MONITORS.size
        monitors = []
        for _ in range(count):
            height, width, depth, x, y = _unpack(_MON, payload, at, "MONITORS_CONFIG")
            monitors.append(MonConfig(width=width, height=height, depth=depth, x=x, y=y))
            at += _MON.size
        sizes: list[MonitorMM] = []
        if flags & MonitorsConfigFlag.PHYSICAL_SIZE and len(payload) >= at + count * _MM.size:
            for _ in range(count):
                h, w = _MM.unpack_from(payload, at)
                sizes.append(MonitorMM(width=w, height=h))
                at += _MM.size
        return cls(monitors=tuple(monitors), flags=flags, physical_sizes=tuple(sizes))


@attrs.frozen
class Reply:
    """``VDAgentReply``: the agent's answer to MONITORS_CONFIG or DISPLAY_CONFIG."""

    TYPE: ClassVar[int] = AgentMessageType.REPLY
    _ST: ClassVar[struct.Struct] = struct.Struct("<II")
    type: int = attrs.field(validator=_u32)
    error: int = attrs.field(validator=_u32)

    def encode(self) -> bytes:
        return self._ST.pack(self.type, self.error)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls._ST, payload, 0, "REPLY"))


@attrs.frozen
class Clipboard:
    """``VDAgentClipboard``: clipboard contents of one type, answering a request."""

    TYPE: ClassVar[int] = AgentMessageType.CLIPBOARD
    type: int = attrs.field(validator=_u32)
    data: bytes = b""
    selection: int = attrs.field(default=ClipboardSelection.CLIPBOARD, validator=_u8)

    def encode(self, *, selection_prefix: bool = False) -> bytes:
        prefix = _selection_prefix(self.selection, selection_prefix)
        return prefix + _U32.pack(self.type) + self.data

    @classmethod
    def decode(cls, payload: bytes, *, selection_prefix: bool = False) -> Self:
        selection, at = _read_selection(payload, selection_prefix, "CLIPBOARD")
        (type_,) = _unpack(_U32, payload, at, "CLIPBOARD")
        return cls(type=type_, data=bytes(payload[at + 4 :]), selection=selection)


@attrs.frozen
class DisplayConfig:
    TYPE: ClassVar[int] = AgentMessageType.DISPLAY_CONFIG
    _ST: ClassVar[struct.Struct] = struct.Struct("<II")
    flags: int = attrs.field(validator=_u32)
    depth: int = attrs.field(validator=_u32)

    def encode(self) -> bytes:
        return self._ST.pack(self.flags, self.depth)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls._ST, payload, 0, "DISPLAY_CONFIG"))


#: Capability words read from an ANNOUNCE_CAPABILITIES; later words name nothing yet.
MAX_CAP_WORDS = 32


@attrs.frozen
class AnnounceCapabilities:
    """``VDAgentAnnounceCapabilities``: ``request`` asks the peer to announce its own."""

    TYPE: ClassVar[int] = AgentMessageType.ANNOUNCE_CAPABILITIES
    request: bool
    caps: CapabilitySet

    def encode(self) -> bytes:
        words = self.caps.words() or (0,)
        return struct.pack(f"<I{len(words)}I", int(self.request), *words)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        (request,) = _unpack(_U32, payload, 0, "ANNOUNCE_CAPABILITIES")
        count = min((len(payload) - 4) // 4, MAX_CAP_WORDS)
        words = struct.unpack_from(f"<{count}I", payload, 4)
        return cls(request=bool(request), caps=CapabilitySet.from_words(words))


@attrs.frozen
class ClipboardGrab:
    """``VDAgentClipboardGrab``: the sender owns the selection and offers these types."""

    TYPE: ClassVar[int] = AgentMessageType.CLIPBOARD_GRAB
    types: tuple[int, ...]
    selection: int = attrs.field(default=ClipboardSelection.CLIPBOARD, validator=_u8)
    serial: int | None = None

    def encode(self, *, selection_prefix: bool = False) -> bytes:
        prefix = _selection_prefix(self.selection, selection_prefix)
        if self.serial is not None:
            prefix += _U32.pack(self.serial)
        return prefix + struct.pack(f"<{len(self.types)}I", *self.types)

    @classmethod
    def decode(
        cls, payload: bytes, *, selection_prefix: bool = False, serial: bool = False
    ) -> Self:
        selection, at = _read_selection(payload, selection_prefix, "CLIPBOARD_GRAB")
        number: int | None = None
        if serial:
            (number,) = _unpack(_U32, payload, at, "CLIPBOARD_GRAB")
            at += 4
        rest = len(payload) - at
        if rest % 4:
            raise AgentDecodeError(f"CLIPBOARD_GRAB: {rest} bytes of types, not whole uint32s")
        types = struct.unpack_from(f"<{rest // 4}I", payload, at)
        return cls(types=types, selection=selection, serial=number)


@attrs.frozen
class ClipboardRequest:
    TYPE: ClassVar[int] = AgentMessageType.CLIPBOARD_REQUEST
    type: int = attrs.field(validator=_u32)
    selection: int = attrs.field(default=ClipboardSelection.CLIPBOARD, validator=_u8)

    def encode(self, *, selection_prefix: bool = False) -> bytes:
        return _selection_prefix(self.selection, selection_prefix) + _U32.pack(self.type)

    @classmethod
    def decode(cls, payload: bytes, *, selection_prefix: bool = False) -> Self:
        selection, at = _read_selection(payload, selection_prefix, "CLIPBOARD_REQUEST")
        (type_,) = _unpack(_U32, payload, at, "CLIPBOARD_REQUEST")
        return cls(type=type_, selection=selection)


@attrs.frozen
class ClipboardRelease:
    TYPE: ClassVar[int] = AgentMessageType.CLIPBOARD_RELEASE
    selection: int = attrs.field(default=ClipboardSelection.CLIPBOARD, validator=_u8)

    def encode(self, *, selection_prefix: bool = False) -> bytes:
        return _selection_prefix(self.selection, selection_prefix)

    @classmethod
    def decode(cls, payload: bytes, *, selection_prefix: bool = False) -> Self:
        selection, _ = _read_selection(payload, selection_prefix, "CLIPBOARD_RELEASE")
        return cls(selection=selection)


@attrs.frozen
class FileXferStart:
    """``VDAgentFileXferStartMessage``: ``keyfile`` is the raw text as sent, normally a GLib
    key file ``[vdagent-file-xfer]`` with ``name`` and ``size`` and a terminating NUL (see
    :func:`.file_xfer.parse_start`)."""

    TYPE: ClassVar[int] = AgentMessageType.FILE_XFER_START
    id: int = attrs.field(validator=_u32)
    keyfile: bytes = b""

    @classmethod
    def for_file(cls, id: int, name: str, size: int) -> Self:
        """What spice-gtk sends: the key file GLib writes, with its NUL."""
        text = f"[vdagent-file-xfer]\nname={_keyfile_escape(name)}\nsize={size}\n"
        return cls(id=id, keyfile=text.encode() + b"\0")

    def encode(self) -> bytes:
        return _U32.pack(self.id) + self.keyfile

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        (id_,) = _unpack(_U32, payload, 0, "FILE_XFER_START")
        return cls(id=id_, keyfile=bytes(payload[4:]))


def _keyfile_escape(value: str) -> str:
    """GLib's ``g_key_file_set_string`` escaping (used by tests playing spice-gtk)."""
    out = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    out = out.replace("\r", "\\r")
    return "\\s" + out[1:] if out.startswith(" ") else out


@attrs.frozen
class FileXferStatusMessage:
    """``VDAgentFileXferStatusMessage``; ``data`` holds the detailed error, if any."""

    TYPE: ClassVar[int] = AgentMessageType.FILE_XFER_STATUS
    _ST: ClassVar[struct.Struct] = struct.Struct("<II")
    id: int = attrs.field(validator=_u32)
    result: int = attrs.field(validator=_u32)
    data: bytes = b""

    @classmethod
    def not_enough_space(cls, id: int, free: int) -> Self:
        """NOT_ENOUGH_SPACE with ``VDAgentFileXferStatusNotEnoughSpace`` (detailed errors)."""
        return cls(id, FileXferStatus.NOT_ENOUGH_SPACE, struct.pack("<Q", free))

    @classmethod
    def glib_io_error(cls, id: int, code: int) -> Self:
        """ERROR with ``VDAgentFileXferStatusError`` (detailed errors): packed, 5 bytes."""
        return cls(id, FileXferStatus.ERROR, struct.pack("<BI", FileXferErrorType.GLIB_IO, code))

    def encode(self) -> bytes:
        return self._ST.pack(self.id, self.result) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        id_, result = _unpack(cls._ST, payload, 0, "FILE_XFER_STATUS")
        return cls(id=id_, result=result, data=bytes(payload[8:]))


_XFER_DATA = struct.Struct("<IQ")


@attrs.frozen
class FileXferData:
    """``VDAgentFileXferDataMessage``; the ``size`` field must equal the bytes carried."""

    TYPE: ClassVar[int] = AgentMessageType.FILE_XFER_DATA
    id: int = attrs.field(validator=_u32)
    data: bytes = b""

    def encode(self) -> bytes:
        return _XFER_DATA.pack(self.id, len(self.data)) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        id_, size = _unpack(_XFER_DATA, payload, 0, "FILE_XFER_DATA")
        carried = len(payload) - _XFER_DATA.size
        if size != carried:
            raise AgentDecodeError(f"FILE_XFER_DATA: size field {size}, {carried} bytes carried")
        return cls(id=id_, data=bytes(payload[_XFER_DATA.size :]))


@attrs.frozen
class ClientDisconnected:
    TYPE: ClassVar[int] = AgentMessageType.CLIENT_DISCONNECTED

    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls()


@attrs.frozen
class MaxClipboard:
    """``VDAgentMaxClipboard``: the largest clipboard the client accepts, -1 for no limit."""

    TYPE: ClassVar[int] = AgentMessageType.MAX_CLIPBOARD
    _ST: ClassVar[struct.Struct] = struct.Struct("<i")
    max: int = attrs.field(validator=_i32)

    def encode(self) -> bytes:
        return self._ST.pack(self.max)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls._ST, payload, 0, "MAX_CLIPBOARD"))


_VOLUME = struct.Struct("<BBB")


@attrs.frozen
class AudioVolumeSync:
    TYPE: ClassVar[int] = AgentMessageType.AUDIO_VOLUME_SYNC
    is_playback: bool
    mute: bool
    volume: tuple[int, ...]

    def encode(self) -> bytes:
        head = _VOLUME.pack(int(self.is_playback), int(self.mute), len(self.volume))
        return head + struct.pack(f"<{len(self.volume)}H", *self.volume)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        playback, mute, count = _unpack(_VOLUME, payload, 0, "AUDIO_VOLUME_SYNC")
        if len(payload) < 3 + 2 * count:
            raise AgentDecodeError(f"AUDIO_VOLUME_SYNC: {count} channels in {len(payload)} bytes")
        volume = struct.unpack_from(f"<{count}H", payload, 3)
        return cls(is_playback=bool(playback), mute=bool(mute), volume=volume)


_DISPLAY_INFO = struct.Struct("<IIII")


@attrs.frozen
class DeviceDisplayInfo:
    """``VDAgentDeviceDisplayInfo``; ``device_address`` as sent (with its NUL, if any)."""

    channel_id: int = attrs.field(validator=_u32)
    monitor_id: int = attrs.field(validator=_u32)
    device_display_id: int = attrs.field(validator=_u32)
    device_address: bytes = b""


@attrs.frozen
class GraphicsDeviceInfo:
    """``VDAgentGraphicsDeviceInfo``: the server's map of channels/monitors to guest devices."""

    TYPE: ClassVar[int] = AgentMessageType.GRAPHICS_DEVICE_INFO
    displays: tuple[DeviceDisplayInfo, ...]

    def encode(self) -> bytes:
        out = [_U32.pack(len(self.displays))]
        for d in self.displays:
            out.append(
                _DISPLAY_INFO.pack(
                    d.channel_id, d.monitor_id, d.device_display_id, len(d.device_address)
                )
            )
            out.append(d.device_address)
        return b"".join(out)

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        (count,) = _unpack(_U32, payload, 0, "GRAPHICS_DEVICE_INFO")
        if count > len(payload) // _DISPLAY_INFO.size:
            raise AgentDecodeError(f"GRAPHICS_DEVICE_INFO: {count} entries in {len(payload)} B")
        at = 4
        displays = []
        for _ in range(count):
            channel, monitor, device, length = _unpack(
                _DISPLAY_INFO, payload, at, "GRAPHICS_DEVICE_INFO"
            )
            at += _DISPLAY_INFO.size
            if len(payload) < at + length:
                raise AgentDecodeError("GRAPHICS_DEVICE_INFO: device address past the end")
            displays.append(
                DeviceDisplayInfo(channel, monitor, device, bytes(payload[at : at + length]))
            )
            at += length
        return cls(displays=tuple(displays))


AgentMessage = (
    MouseState
    | MonitorsConfig
    | Reply
    | Clipboard
    | DisplayConfig
    | AnnounceCapabilities
    | ClipboardGrab
    | ClipboardRequest
    | ClipboardRelease
    | FileXferStart
    | FileXferStatusMessage
    | FileXferData
    | ClientDisconnected
    | MaxClipboard
    | AudioVolumeSync
    | GraphicsDeviceInfo
)

_CLASSES: tuple[type[AgentMessage], ...] = (
    MouseState,
    MonitorsConfig,
    Reply,
    Clipboard,
    DisplayConfig,
    AnnounceCapabilities,
    ClipboardGrab,
    ClipboardRequest,
    ClipboardRelease,
    FileXferStart,
    FileXferStatusMessage,
    FileXferData,
    ClientDisconnected,
    MaxClipboard,
    AudioVolumeSync,
    GraphicsDeviceInfo,
)
MESSAGE_CLASSES: dict[int, type[AgentMessage]] = {cls.TYPE: cls for cls in _CLASSES}
_PREFIXED = frozenset(
    {
        AgentMessageType.CLIPBOARD,
        AgentMessageType.CLIPBOARD_GRAB,
        AgentMessageType.CLIPBOARD_REQUEST,
        AgentMessageType.CLIPBOARD_RELEASE,
    }
)


def decode_payload(
    type_: int, payload: bytes, *, selection_prefix: bool = False, grab_serial: bool = False
) -> AgentMessage:
    """Decode one payload by its header type; an unknown type is an :class:`AgentDecodeError`."""
    cls = MESSAGE_CLASSES.get(type_)
    if cls is None:
        raise AgentDecodeError(f"unknown agent message type {type_}")
    if cls is ClipboardGrab:
        return ClipboardGrab.decode(payload, selection_prefix=selection_prefix, serial=grab_serial)
    if type_ in _PREFIXED:
        decode: Callable[..., AgentMessage] = cls.decode
        return decode(payload, selection_prefix=selection_prefix)
    return cls.decode(payload)


def encode_message(msg: AgentMessage, *, selection_prefix: bool = False) -> bytes:
    """Header and payload of one message, as one contiguous VDAgentMessage."""
    if isinstance(msg, Clipboard | ClipboardGrab | ClipboardRequest | ClipboardRelease):
        payload = msg.encode(selection_prefix=selection_prefix)
    else:
        payload = msg.encode()
    return AgentMessageHeader(type=msg.TYPE, size=len(payload)).encode() + payload
