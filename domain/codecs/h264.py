"""H.264 video frames (stream codec type 3) from BGRX pixels, through PyAV's libx264 (bundled
in the ``av`` wheel; it releases the GIL while it encodes).

One :class:`H264Encoder` is one stream's encoder, tuned for a live screen: the ``ultrafast``
preset with x264's ``zerolatency`` tune (no B-frames, no look-ahead: a frame comes out per frame
in), one thread (the display worker runs encoders side by side), and a VBV of one frame's
budget, so that no frame, not even a keyframe, bursts much above the rate on a slow link.
Keyframes (IDR) come only when asked: the first frame, and after a frame that never reached the
client; each carries its SPS and PPS, so a decoder may start at any of them. The output is an
Annex B byte stream (start codes), one access unit per frame, each led by an access unit
delimiter: what spice-gtk's GStreamer pipeline (``video/x-h264`` into h264parse and avdec_h264)
takes, as the C server sends it. spice-gtk's caps do not say that a buffer is a whole access
unit, so h264parse closes one only when it sees the next begin: a frame is shown when the next
one arrives. The delimiter makes that the next frame's first bytes; without it h264parse
waits for the next frame's first slice to end, two frames behind (measured with GStreamer
1.22: appsrc, h264parse, avdec_h264). The C server's stream (x264enc aud=true) has the same
one frame of delay.

Presets measured on the 720p mandelbrot clip at 4.5 Mbit/s (CPU per frame, conversion
included; PSNR): ultrafast 12-16 ms, 24.9 dB; superfast 17 ms, 25.4 dB; veryfast 24 ms,
25.4 dB. ultrafast buys 30-50% of the CPU for 0.5 dB.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from spice.domain.codecs.video import AvEncoder, encoder_available

PRESET = "ultrafast"
#: The frame rate the rate control spreads the bit rate over (the streams' own).
FPS = 30
#: The VBV buffer, in frames' worth of the bit rate.
VBV_FRAMES = 1.0

#: NAL unit types (H.264 Table 7-1) the tests and the peer look for.
NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9


def available() -> bool:
    """Whether PyAV's FFmpeg has the libx264 encoder."""
    return encoder_available("libx264")


def nal_types(data: bytes) -> list[int]:
    """The nal_unit_type of each NAL unit of an Annex B byte stream, in order (each unit
    follows a 00 00 01 start code; a four-byte 00 00 00 01 ends in one)."""
    types = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        types.append(data[i + 3] & 0x1F)
        i = data.find(b"\x00\x00\x01", i + 3)
    return types


def is_keyframe(data: bytes) -> bool:
    """Whether an access unit starts a decodable stream: an IDR slice with an SPS and a PPS
    before it."""
    types = nal_types(data)
    if NAL_IDR not in types:
        return False
    first_idr = types.index(NAL_IDR)
    return NAL_SPS in types[:first_idr] and NAL_PPS in types[:first_idr]


class H264Encoder(AvEncoder):
    """Encode BGRX frames of ``width`` x ``height`` at about ``bit_rate`` bits/s."""

    label = "H.264"
    encoder = "libx264"

    def __init__(
        self, width: int, height: int, bit_rate: int, *, preset: str = PRESET, fps: int = FPS
    ) -> None:
        self.preset = preset
        self.fps = fps
        super().__init__(width, height, bit_rate)

    def _configure(self, ctx: Any) -> None:
        ctx.framerate = Fraction(self.fps, 1)
        kbits = max(1, self.bit_rate // 1000)
        vbv = max(1, int(kbits * VBV_FRAMES / self.fps))
        params = {
            "keyint": "infinite",  # keyframes only when asked
            "scenecut": "0",
            "bframes": "0",
            "rc-lookahead": "0",
            "vbv-maxrate": str(kbits),
            "vbv-bufsize": str(vbv),
            "repeat-headers": "1",  # SPS/PPS before every IDR
            "annexb": "1",
            "aud": "1",  # an access unit delimiter first: see the module's docstring
            # The colours are BT.601, limited range (what the I420 conversion makes): said in
            # the SPS, or GStreamer assumes BT.709 for HD sizes (1.3 dB lost at 720p).
            "colormatrix": "smpte170m",
            "colorprim": "smpte170m",
            "transfer": "smpte170m",
            "range": "tv",
        }
        ctx.options = {
            "preset": self.preset,
            "tune": "zerolatency",
            "threads": "1",
            "forced-idr": "1",  # a keyframe asked for is an IDR, not a mere I-frame
            "x264-params": ":".join(f"{k}={v}" for k, v in params.items()),
        }
