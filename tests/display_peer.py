"""A display-channel client in the test's hands: it reads the server machine's bytes (mini
headers), applies them the way spice-gtk's canvas does, keeps an image cache with spice-gtk's
rules (CACHE_ME stores, FROM_CACHE of an unknown id is fatal: spice-gtk would hang, INVAL_LIST
drops) and answers the ack window. Images are decoded with the project's own decoders."""

from __future__ import annotations

import struct

import numpy as np

from spice.domain.codecs.h264 import is_keyframe as h264_keyframe
from spice.domain.codecs.jpeg import decode_jpeg_bgrx
from spice.domain.codecs.lz import decode_lz
from spice.domain.codecs.lz4_image import decode_lz4_bgrx
from spice.domain.codecs.video import VideoDecoder
from spice.domain.display.surface import color_to_bgrx
from spice.domain.enums import ImageFlags, ImageType, MsgDisplay

_MINI = struct.Struct("<HI")


def client_message(msg_type: int, body: bytes = b"") -> bytes:
    return _MINI.pack(msg_type, len(body)) + body


def display_init(cache_pixels: int = 20 * 1024 * 1024) -> bytes:
    return client_message(101, struct.pack("<BqBi", 1, cache_pixels, 0, 0))


def decode_image(image_type: int, width: int, height: int, payload: bytes) -> np.ndarray:
    if image_type == ImageType.LZ_RGB:
        out = decode_lz(payload)
    elif image_type == ImageType.QUIC:
        from spice.domain.codecs.quic import decode_quic

        out = decode_quic(payload)
    elif image_type == ImageType.LZ4:
        raw = decode_lz4_bgrx(payload, width, height)
        out = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)
    elif image_type == ImageType.JPEG:
        out = decode_jpeg_bgrx(payload)
    else:
        raise AssertionError(f"unexpected image type {image_type}")
    assert out.shape[:2] == (height, width), (out.shape, width, height)
    return out


class DisplayPeer:
    def __init__(self) -> None:
        self.pixels: np.ndarray | None = None
        self.marked = False
        self.cache: dict[int, np.ndarray] = {}
        self.cache_hits = 0
        self.types: list[int] = []
        self.ack_window = 0
        self.ack_generation = 0
        self._since_ack = 0
        self._buffer = b""
        self.replies: list[bytes] = []
        self.messages = 0
        #: Streams: id -> (dest top, left, bottom, right; clip rectangles or None).
        self.streams: dict[int, tuple[tuple[int, int, int, int], list | None]] = {}
        self.stream_codecs: list[int] = []
        #: VP8 (2) and H.264 (3) streams: id -> [codec, decoder, mm_time of the WebM cluster
        #: spice-html5 would be in (VP8)].
        self.video: dict[int, list] = {}
        #: VP8 frames that would start a spice-html5 cluster and were not keyframes.
        self.vp8_bad_cluster_starts = 0
        self.vp8_keyframes = 0
        #: H.264 access units with an IDR slice after an SPS and a PPS.
        self.h264_keyframes = 0
        self.h264_frames = 0
        self.stream_frames = 0
        self.scaled_frames = 0
        self.pings = 0
        self.report_requests: list[tuple[int, int, int, int]] = []

    def _video_frame(self, stream_id: int, mm_time: int, data: bytes) -> np.ndarray:
        """Decode a VP8 or H.264 frame. VP8: check it is a keyframe where spice-html5 starts
        a WebM cluster (the first frame, then the first at least 1000 ms after the last
        start). H.264: the stream's first frame must be a keyframe (IDR with SPS and PPS)."""
        state = self.video[stream_id]
        if state[0] == 2:
            key = len(data) >= 3 and not data[0] & 1  # VP8 frame tag: bit 0 clear on keyframes
            self.vp8_keyframes += key
            if state[2] is None or mm_time - state[2] >= 1000:
                state[2] = mm_time
                self.vp8_bad_cluster_starts += not key
        else:
            key = h264_keyframe(data)
            assert key or self.h264_frames, "an H.264 stream that starts without a keyframe"
            self.h264_keyframes += key
            self.h264_frames += 1
        out: np.ndarray = state[1].decode(data)
        return out

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _MINI.size:
            msg_type, size = _MINI.unpack_from(self._buffer)
            if len(self._buffer) < _MINI.size + size:
                return
            body = self._buffer[_MINI.size : _MINI.size + size]
            self._buffer = self._buffer[_MINI.size + size :]
            self.apply(msg_type, body)

    def take_replies(self) -> bytes:
        out, self.replies = b"".join(self.replies), []
        return out

    def apply(self, msg_type: int, body: bytes) -> None:
        self.messages += 1
        if msg_type == 3:  # SET_ACK
            self.ack_generation, self.ack_window = struct.unpack("<II", body)
            self.replies.append(client_message(1, struct.pack("<I", self.ack_generation)))
            return
        if self.ack_window:
            self._since_ack += 1
            if self._since_ack == self.ack_window:
                self._since_ack = 0
                self.replies.append(client_message(2))
        if msg_type == 4:  # PING: PONG with its id and timestamp
            self.pings += 1
            self.replies.append(client_message(3, body[:12]))
        elif msg_type == MsgDisplay.SURFACE_CREATE:
            _, w, h, _, _ = struct.unpack("<5I", body)
            self.pixels = np.zeros((h, w, 4), dtype=np.uint8)
            self.marked = False
        elif msg_type == MsgDisplay.SURFACE_DESTROY:
            self.pixels = None
        elif msg_type == MsgDisplay.MARK:
            self.marked = True
        elif msg_type == MsgDisplay.DRAW_FILL:
            top, left, bottom, right = struct.unpack_from("<4i", body, 4)
            assert body[20] == 0
            assert body[21] == 1  # SOLID
            (color,) = struct.unpack_from("<I", body, 22)
            assert self.pixels is not None
            self.pixels[top:bottom, left:right] = color_to_bgrx(color)
        elif msg_type == MsgDisplay.COPY_BITS:
            top, left, bottom, right = struct.unpack_from("<4i", body, 4)
            sx, sy = struct.unpack_from("<ii", body, 21)
            assert self.pixels is not None
            h, w = bottom - top, right - left
            block = self.pixels[sy : sy + h, sx : sx + w].copy()
            self.pixels[top:bottom, left:right] = block
        elif msg_type == MsgDisplay.INVAL_LIST:
            (count,) = struct.unpack_from("<H", body)
            for i in range(count):
                kind, image_id = struct.unpack_from("<BQ", body, 2 + 9 * i)
                assert kind == 1
                assert image_id in self.cache, f"INVAL_LIST of {image_id}, not held"
                del self.cache[image_id]
        elif msg_type == MsgDisplay.DRAW_COPY:
            self._draw_copy(body)
        elif msg_type == MsgDisplay.STREAM_CREATE:
            _surface, stream_id, flags, codec = struct.unpack_from("<IIBB", body)
            assert flags == 1  # TOP_DOWN
            top, left, bottom, right = struct.unpack_from("<4i", body, 34)
            assert body[50] == 0  # clip NONE
            assert stream_id not in self.streams, "stream created twice"
            self.streams[stream_id] = ((top, left, bottom, right), None)
            self.stream_codecs.append(codec)
            if codec in (2, 3):
                self.video[stream_id] = [codec, VideoDecoder("vp8" if codec == 2 else "h264"), None]
        elif msg_type == MsgDisplay.STREAM_CLIP:
            (stream_id,) = struct.unpack_from("<I", body)
            dest, _ = self.streams[stream_id]
            clip = None
            if body[4] == 1:
                (count,) = struct.unpack_from("<I", body, 5)
                clip = [struct.unpack_from("<4i", body, 9 + 16 * i) for i in range(count)]
            self.streams[stream_id] = (dest, clip)
        elif msg_type == MsgDisplay.STREAM_DATA:
            stream_id, _mm_time, size = struct.unpack_from("<III", body)
            assert stream_id in self.streams, "STREAM_DATA for an unknown stream"
            (top, left, bottom, right), clip = self.streams[stream_id]
            if stream_id in self.video:
                frame = self._video_frame(stream_id, _mm_time, body[12 : 12 + size])
                # A <video> of the stream's size scales smaller frames up (nearest here).
                rows = (np.arange(bottom - top) * frame.shape[0]) // (bottom - top)
                cols = (np.arange(right - left) * frame.shape[1]) // (right - left)
                frame = frame[rows][:, cols]
            else:
                frame = decode_jpeg_bgrx(body[12 : 12 + size])
            assert frame.shape[:2] == (bottom - top, right - left)
            self.stream_frames += 1
            assert self.pixels is not None
            for t, lft, b, r in clip or [(top, left, bottom, right)]:
                self.pixels[t:b, lft:r, :3] = frame[t - top : b - top, lft - left : r - left, :3]
        elif msg_type == MsgDisplay.STREAM_DATA_SIZED:
            stream_id, _mm_time, width, height, top, left, bottom, right, size = struct.unpack_from(
                "<IIIIiiiiI", body
            )
            assert stream_id in self.streams, "STREAM_DATA_SIZED for an unknown stream"
            _, clip = self.streams[stream_id]
            if stream_id in self.video:
                frame = self._video_frame(stream_id, _mm_time, body[36 : 36 + size])
            else:
                frame = decode_jpeg_bgrx(body[36 : 36 + size])
            assert frame.shape[:2] == (height, width)
            # Scaled onto dest with nearest neighbour, as spice-gtk's canvas does.
            rows = (np.arange(bottom - top) * height) // (bottom - top)
            cols = (np.arange(right - left) * width) // (right - left)
            frame = frame[rows][:, cols]
            self.stream_frames += 1
            self.scaled_frames += (width, height) != (right - left, bottom - top)
            assert self.pixels is not None
            for t, lft, b, r in clip or [(top, left, bottom, right)]:
                self.pixels[t:b, lft:r, :3] = frame[t - top : b - top, lft - left : r - left, :3]
        elif msg_type == MsgDisplay.STREAM_DESTROY:
            (stream_id,) = struct.unpack_from("<I", body)
            assert stream_id in self.streams, "STREAM_DESTROY for an unknown stream"
            del self.streams[stream_id]
            self.video.pop(stream_id, None)
        elif msg_type == MsgDisplay.STREAM_ACTIVATE_REPORT:
            self.report_requests.append(struct.unpack("<4I", body))
        elif msg_type == MsgDisplay.MONITORS_CONFIG:
            pass
        else:
            raise AssertionError(f"unexpected display message {msg_type}")

    def _draw_copy(self, body: bytes) -> None:
        top, left, bottom, right = struct.unpack_from("<4i", body, 4)
        assert body[20] == 0
        (src_bitmap,) = struct.unpack_from("<I", body, 21)
        image_id, image_type, flags, width, height = struct.unpack_from("<QBBII", body, src_bitmap)
        assert (width, height) == (right - left, bottom - top)
        assert image_id < 1 << 31
        at = src_bitmap + 18
        self.types.append(image_type)
        if image_type == ImageType.FROM_CACHE:
            assert image_id in self.cache, f"FROM_CACHE {image_id}: spice-gtk would hang"
            self.cache_hits += 1
            data = self.cache[image_id]
        elif image_type == ImageType.BITMAP:
            fmt, _, x, y, stride, _ = struct.unpack_from("<BBIIII", body, at)
            assert (fmt, x, y, stride) == (8, width, height, width * 4)
            raw = body[at + 18 : at + 18 + stride * height]
            data = np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 4)
        else:
            (size,) = struct.unpack_from("<I", body, at)
            payload = body[at + 4 : at + 4 + size]
            assert len(payload) == size
            data = decode_image(image_type, width, height, payload)
        if flags & ImageFlags.CACHE_ME:
            assert image_type != ImageType.FROM_CACHE
            self.cache[image_id] = data.copy()
        assert self.pixels is not None
        view = self.pixels[top:bottom, left:right]
        view[..., :3] = data[..., :3]
        view[..., 3] = 0
