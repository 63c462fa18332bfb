"""Numeric constants of the SPICE wire protocol, mirroring spice-protocol's ``enums.h`` and
``protocol.h`` so that names in this code can be grepped against the protocol's own.

Message type numbers are per channel and per direction; the ``Msg*`` enums are what the server
sends, the ``Msgc*`` enums what the client sends.
"""

from __future__ import annotations

import enum

SPICE_MAGIC = b"REDQ"
SPICE_VERSION_MAJOR = 2
SPICE_VERSION_MINOR = 2
SPICE_TICKET_KEY_PAIR_LENGTH = 1024
SPICE_TICKET_PUBKEY_BYTES = SPICE_TICKET_KEY_PAIR_LENGTH // 8 + 34
SPICE_MAX_PASSWORD_LENGTH = 60
SPICE_INPUT_MOTION_ACK_BUNCH = 4


class ChannelType(enum.IntEnum):
    MAIN = 1
    DISPLAY = 2
    INPUTS = 3
    CURSOR = 4
    PLAYBACK = 5
    RECORD = 6
    TUNNEL = 7
    SMARTCARD = 8
    USBREDIR = 9
    PORT = 10
    WEBDAV = 11


class LinkError(enum.IntEnum):
    OK = 0
    ERROR = 1
    INVALID_MAGIC = 2
    INVALID_DATA = 3
    VERSION_MISMATCH = 4
    NEED_SECURED = 5
    NEED_UNSECURED = 6
    PERMISSION_DENIED = 7
    BAD_CONNECTION_ID = 8
    CHANNEL_NOT_AVAILABLE = 9


class CommonCap(enum.IntEnum):
    PROTOCOL_AUTH_SELECTION = 0
    AUTH_SPICE = 1
    AUTH_SASL = 2
    MINI_HEADER = 3


class MainCap(enum.IntEnum):
    SEMI_SEAMLESS_MIGRATE = 0
    NAME_AND_UUID = 1
    AGENT_CONNECTED_TOKENS = 2
    SEAMLESS_MIGRATE = 3


class DisplayCap(enum.IntEnum):
    SIZED_STREAM = 0
    MONITORS_CONFIG = 1
    COMPOSITE = 2
    A8_SURFACE = 3
    STREAM_REPORT = 4
    LZ4_COMPRESSION = 5
    PREF_COMPRESSION = 6
    GL_SCANOUT = 7
    MULTI_CODEC = 8
    CODEC_MJPEG = 9
    CODEC_VP8 = 10
    CODEC_H264 = 11
    PREF_VIDEO_CODEC_TYPE = 12
    CODEC_VP9 = 13
    CODEC_H265 = 14


class InputsCap(enum.IntEnum):
    KEY_SCANCODE = 0


class PlaybackCap(enum.IntEnum):
    CELT_0_5_1 = 0
    VOLUME = 1
    LATENCY = 2
    OPUS = 3


class RecordCap(enum.IntEnum):
    CELT_0_5_1 = 0
    VOLUME = 1
    OPUS = 2


class AudioDataMode(enum.IntEnum):
    INVALID = 0
    RAW = 1
    CELT_0_5_1 = 2
    OPUS = 3


class AudioFmt(enum.IntEnum):
    INVALID = 0
    S16 = 1


class MsgPlayback(enum.IntEnum):
    DATA = 101
    MODE = 102
    START = 103
    STOP = 104
    VOLUME = 105
    MUTE = 106
    LATENCY = 107


class MsgRecord(enum.IntEnum):
    START = 101
    STOP = 102
    VOLUME = 103
    MUTE = 104


class MsgcRecord(enum.IntEnum):
    DATA = 101
    MODE = 102
    START_MARK = 103


class Msg(enum.IntEnum):
    """Base messages from the server, common to every channel."""

    MIGRATE = 1
    MIGRATE_DATA = 2
    SET_ACK = 3
    PING = 4
    WAIT_FOR_CHANNELS = 5
    DISCONNECTING = 6
    NOTIFY = 7
    LIST = 8


class Msgc(enum.IntEnum):
    """Base messages from the client, common to every channel."""

    ACK_SYNC = 1
    ACK = 2
    PONG = 3
    MIGRATE_FLUSH_MARK = 4
    MIGRATE_DATA = 5
    DISCONNECTING = 6


class MsgMain(enum.IntEnum):
    MIGRATE_BEGIN = 101
    MIGRATE_CANCEL = 102
    INIT = 103
    CHANNELS_LIST = 104
    MOUSE_MODE = 105
    MULTI_MEDIA_TIME = 106
    AGENT_CONNECTED = 107
    AGENT_DISCONNECTED = 108
    AGENT_DATA = 109
    AGENT_TOKEN = 110
    MIGRATE_SWITCH_HOST = 111
    MIGRATE_END = 112
    NAME = 113
    UUID = 114
    AGENT_CONNECTED_TOKENS = 115


class MsgcMain(enum.IntEnum):
    CLIENT_INFO = 101
    MIGRATE_CONNECTED = 102
    MIGRATE_CONNECT_ERROR = 103
    ATTACH_CHANNELS = 104
    MOUSE_MODE_REQUEST = 105
    AGENT_START = 106
    AGENT_DATA = 107
    AGENT_TOKEN = 108
    MIGRATE_END = 109
    MIGRATE_DST_DO_SEAMLESS = 110
    MIGRATE_CONNECTED_SEAMLESS = 111
    QUALITY_INDICATOR = 112


class MsgDisplay(enum.IntEnum):
    MODE = 101
    MARK = 102
    RESET = 103
    COPY_BITS = 104
    INVAL_LIST = 105
    INVAL_ALL_PIXMAPS = 106
    INVAL_PALETTE = 107
    INVAL_ALL_PALETTES = 108
    STREAM_CREATE = 122
    STREAM_DATA = 123
    STREAM_CLIP = 124
    STREAM_DESTROY = 125
    STREAM_DESTROY_ALL = 126
    DRAW_FILL = 302
    DRAW_OPAQUE = 303
    DRAW_COPY = 304
    DRAW_BLEND = 305
    DRAW_BLACKNESS = 306
    DRAW_WHITENESS = 307
    DRAW_INVERS = 308
    DRAW_ROP3 = 309
    DRAW_STROKE = 310
    DRAW_TEXT = 311
    DRAW_TRANSPARENT = 312
    DRAW_ALPHA_BLEND = 313
    SURFACE_CREATE = 314
    SURFACE_DESTROY = 315
    STREAM_DATA_SIZED = 316
    MONITORS_CONFIG = 317
    DRAW_COMPOSITE = 318
    STREAM_ACTIVATE_REPORT = 319


class MsgcDisplay(enum.IntEnum):
    INIT = 101
    STREAM_REPORT = 102
    PREFERRED_COMPRESSION = 103
    GL_DRAW_DONE = 104
    PREFERRED_VIDEO_CODEC_TYPE = 105


class MsgInputs(enum.IntEnum):
    INIT = 101
    KEY_MODIFIERS = 102
    MOUSE_MOTION_ACK = 111


class MsgcInputs(enum.IntEnum):
    KEY_DOWN = 101
    KEY_UP = 102
    KEY_MODIFIERS = 103
    KEY_SCANCODE = 104
    MOUSE_MOTION = 111
    MOUSE_POSITION = 112
    MOUSE_PRESS = 113
    MOUSE_RELEASE = 114


class MsgCursor(enum.IntEnum):
    INIT = 101
    RESET = 102
    SET = 103
    MOVE = 104
    HIDE = 105
    TRAIL = 106
    INVAL_ONE = 107
    INVAL_ALL = 108


class MsgSpicevmc(enum.IntEnum):
    """Server messages of every spicevmc channel (usbredir, port, webdav)."""

    DATA = 101
    COMPRESSED_DATA = 102


class MsgcSpicevmc(enum.IntEnum):
    DATA = 101
    COMPRESSED_DATA = 102


class MsgPort(enum.IntEnum):
    INIT = 201
    EVENT = 202


class MsgcPort(enum.IntEnum):
    EVENT = 201


class PortEvent(enum.IntEnum):
    """``SPICE_PORT_EVENT_*``: in server PORT_EVENT and client PORT_EVENT alike."""

    OPENED = 0
    CLOSED = 1
    BREAK = 2


class DataCompressionType(enum.IntEnum):
    NONE = 0
    LZ4 = 1


class MouseMode(enum.IntFlag):
    SERVER = 1
    CLIENT = 2


class KeyboardModifier(enum.IntFlag):
    SCROLL_LOCK = 1
    NUM_LOCK = 2
    CAPS_LOCK = 4


class MouseButton(enum.IntEnum):
    INVALID = 0
    LEFT = 1
    MIDDLE = 2
    RIGHT = 3
    UP = 4
    DOWN = 5
    SIDE = 6
    EXTRA = 7


class MouseButtonMask(enum.IntFlag):
    LEFT = 1
    MIDDLE = 2
    RIGHT = 4
    UP = 8
    DOWN = 16
    SIDE = 32
    EXTRA = 64


class NotifySeverity(enum.IntEnum):
    INFO = 0
    WARN = 1
    ERROR = 2


class NotifyVisibility(enum.IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2


class SurfaceFmt(enum.IntEnum):
    INVALID = 0
    FMT_1_A = 1
    FMT_8_A = 8
    FMT_16_555 = 16
    FMT_32_xRGB = 32
    FMT_16_565 = 80
    FMT_32_ARGB = 96


class SurfaceFlags(enum.IntFlag):
    PRIMARY = 1
    STREAMING_MODE = 2


class ClipType(enum.IntEnum):
    NONE = 0
    RECTS = 1


class BrushType(enum.IntEnum):
    NONE = 0
    SOLID = 1
    PATTERN = 2


class Ropd(enum.IntFlag):
    INVERS_SRC = 1
    INVERS_BRUSH = 2
    INVERS_DEST = 4
    OP_PUT = 8
    OP_OR = 16
    OP_AND = 32
    OP_XOR = 64
    OP_BLACKNESS = 128
    OP_WHITENESS = 256
    OP_INVERS = 512
    INVERS_RES = 1024


class ImageType(enum.IntEnum):
    BITMAP = 0
    QUIC = 1
    LZ_PLT = 100
    LZ_RGB = 101
    GLZ_RGB = 102
    FROM_CACHE = 103
    SURFACE = 104
    JPEG = 105
    FROM_CACHE_LOSSLESS = 106
    ZLIB_GLZ_RGB = 107
    JPEG_ALPHA = 108
    LZ4 = 109


class ImageFlags(enum.IntFlag):
    CACHE_ME = 1
    HIGH_BITS_SET = 2
    CACHE_REPLACE_ME = 4


class BitmapFmt(enum.IntEnum):
    INVALID = 0
    BIT1_LE = 1
    BIT1_BE = 2
    BIT4_LE = 3
    BIT4_BE = 4
    BIT8 = 5
    BIT16 = 6
    BIT24 = 7
    BIT32 = 8
    RGBA = 9
    BIT8_A = 10


class BitmapFlags(enum.IntFlag):
    PAL_CACHE_ME = 1
    PAL_FROM_CACHE = 2
    TOP_DOWN = 4


class ImageCompression(enum.IntEnum):
    """What a client asks for in PREFERRED_COMPRESSION."""

    INVALID = 0
    OFF = 1
    AUTO_GLZ = 2
    AUTO_LZ = 3
    QUIC = 4
    GLZ = 5
    LZ = 6
    LZ4 = 7


class CursorType(enum.IntEnum):
    ALPHA = 0
    MONO = 1
    COLOR4 = 2
    COLOR8 = 3
    COLOR16 = 4
    COLOR24 = 5
    COLOR32 = 6


class CursorFlags(enum.IntFlag):
    NONE = 1
    CACHE_ME = 2
    FROM_CACHE = 4
