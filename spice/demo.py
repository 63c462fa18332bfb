"""The built-in demo display: a small desktop drawn with Pillow, live.

It shows a clock, a bouncing ball, what the user types (US layout) and a trail where the mouse
drags, with a custom arrow cursor. It follows the client's window size (resize requests from
the agent, at least 400x300) and shows the last text a client copied. On a display with
several monitors (``--monitors N``) the desktop is on the first and every other monitor shows a
panel of its own colour with its number; spice-gtk opens a window for each. It exercises the
same public API an application uses.

Audio, at the bottom right: clicking "Tone" plays a short chime to every client
(``server.playback``); clicking "Mic" asks the clients for their microphones
(``server.record``) and the bar beside it shows the level of what they send
(``server.record_events()``) until "Mic" is clicked again.
"""

from __future__ import annotations

import contextlib
import datetime
import math
from typing import Any

import numpy as np
import trio
from PIL import Image, ImageDraw, ImageFont

from spice.audio import Record
from spice.display import Display, to_bgrx
from spice.domain.agent.app_events import ClipboardOffered, FileReceived
from spice.domain.audio_events import RecordData, RecordStarted, RecordStopped
from spice.domain.input_events import (
    KeyEvent,
    MouseButtonEvent,
    MouseMotionEvent,
    MousePositionEvent,
)
from spice.server import Server

_ROWS = [
    (0x02, "1234567890-="),
    (0x10, "qwertyuiop[]"),
    (0x1E, "asdfghjkl;'`"),
    (0x2C, "zxcvbnm,./"),
]
_SHIFTED = dict(zip("1234567890-=[];'`,./", '!@#$%^&*()_+{}:"~<>?', strict=True))
KEYMAP: dict[int, str] = {0x39: " ", 0x2B: "\\"}
for _start, _chars in _ROWS:
    for _i, _ch in enumerate(_chars):
        KEYMAP[_start + _i] = _ch
SHIFT_KEYS = {0x2A, 0x36}
BACKSPACE, ENTER = 0x0E, 0x1C

BG_TOP, BG_BOTTOM = (32, 64, 112), (12, 20, 40)
BUTTON, BUTTON_ON, BUTTON_TEXT = (70, 80, 100), (60, 150, 90), (240, 240, 245)
LEVEL_EMPTY, LEVEL_FULL = (40, 44, 52), (80, 220, 120)
#: The level bar spans -60 dBFS (empty) to 0 dBFS (full), redrawn at most this often.
LEVEL_FLOOR_DB, LEVEL_INTERVAL = -60.0, 0.05
#: The smallest size the demo's layout accepts from a client's resize request.
MIN_W, MIN_H = 400, 300
#: Characters of typed text kept (the box shows the last 120).
TYPED_KEPT = 1024
#: Input events handled together, with one redraw of the text.
BATCH = 1024


def arrow_cursor() -> np.ndarray:
    """A 24x24 white arrow with a dark outline, B,G,R,A."""
    img = Image.new("RGBA", (24, 24), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.polygon(
        [(1, 1), (1, 19), (6, 14), (10, 22), (13, 21), (9, 13), (16, 13)],
        fill=(255, 255, 255, 255),
        outline=(20, 20, 20, 255),
    )
    arr = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(arr[..., [2, 1, 0, 3]])


class Demo:
    def __init__(self, display: Display) -> None:
        self.display = display
        # The desktop fills the first monitor (at the display's origin); the others get panels.
        _x, _y, self.w, self.h = display.monitors[0]
        self.panels = display.monitors[1:]
        self.font = ImageFont.load_default(size=18) if hasattr(ImageFont, "load_default") else None
        self.typed = ""
        self.shift = False
        self.buttons = 0
        self.pointer = (self.w // 2, self.h // 2)
        self.ball = [self.w / 3, self.h / 2, 5.0, 3.5]
        self.ball_r = 18
        # Each picture is composed from ``self.bg`` and pushed under this lock, so a ball step
        # composed before a trail was drawn cannot land after it and erase it.
        self.lock = trio.Lock()
        #: The last line of news from the agent (clipboard, files), shown at the bottom.
        self.news = ""
        #: What the audio row shows: the microphones asked for, the last level drawn (0..1).
        self.recording = False
        self.level = 0.0
        #: Clicks on "Tone" waiting for :meth:`play_tones` (one at most: a chime at a time).
        self.tone_send, self.tone_receive = trio.open_memory_channel[None](1)
        #: ``server.record``, set by :func:`run_demo` (a Demo alone has no microphones).
        self.server_record: Record | None = None

    # -- the audio row: [Tone] [Mic] [level bar], bottom right ------------------------------------
    def tone_box(self) -> tuple[int, int, int, int]:
        return (self.w - 250, self.h - 34, self.w - 190, self.h - 8)

    def mic_box(self) -> tuple[int, int, int, int]:
        return (self.w - 180, self.h - 34, self.w - 130, self.h - 8)

    def level_box(self) -> tuple[int, int, int, int]:
        return (self.w - 120, self.h - 28, self.w - 20, self.h - 14)

    def _button(self, box: tuple[int, int, int, int], label: str, on: bool) -> Image.Image:
        left, top, right, bottom = box
        img = Image.new("RGB", (right - left, bottom - top), BUTTON_ON if on else BUTTON)
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, right - left - 1, bottom - top - 1], outline=(200, 205, 215))
        d.text((8, 3), label, fill=BUTTON_TEXT, font=self.font)
        return img

    def _level_bar(self) -> Image.Image:
        left, top, right, bottom = self.level_box()
        img = Image.new("RGB", (right - left, bottom - top), LEVEL_EMPTY)
        filled = round(self.level * (right - left))
        if filled:
            ImageDraw.Draw(img).rectangle([0, 0, filled - 1, bottom - top - 1], fill=LEVEL_FULL)
        return img

    async def _draw_audio(self) -> None:
        for box, img in (
            (self.tone_box(), self._button(self.tone_box(), "Tone", False)),
            (self.mic_box(), self._button(self.mic_box(), "Mic", self.recording)),
            (self.level_box(), self._level_bar()),
        ):
            self.bg.paste(img, box[:2])
            await self.display.update(box[0], box[1], img)

    async def show_audio(
        self, *, recording: bool | None = None, level: float | None = None
    ) -> None:
        async with self.lock:
            if recording is not None:
                self.recording = recording
            if level is not None:
                self.level = level
            await self._draw_audio()

    @staticmethod
    def level_fraction(rms: float) -> float:
        """An RMS level (0..1 of full scale) as the bar's filled fraction (dBFS scale)."""
        if rms <= 0:
            return 0.0
        db = 20 * math.log10(rms)
        return min(max(1 - db / LEVEL_FLOOR_DB, 0.0), 1.0)

    async def resize(self, display: Display, width: int, height: int) -> bool:
        """A client's window asks for this size: take it and redraw everything."""
        if width < MIN_W or height < MIN_H or self.panels:
            return False  # several monitors: the layout is the demo's, not a window's
        async with self.lock:
            await display.resize(width, height)
            self.w, self.h = width, height
            r = self.ball_r
            self.ball[0] = min(max(self.ball[0], r + 30), self.w - r)
            self.ball[1] = min(max(self.ball[1], r + 210), self.h - r - 40)
            self.pointer = (min(self.pointer[0], self.w - 1), min(self.pointer[1], self.h - 1))
            await self._draw_full()
        return True

    async def show_news(self, text: str) -> None:
        async with self.lock:
            self.news = text[:80]
            img = Image.new("RGB", (min(self.w - 80, 640), 24), (230, 230, 235))
            ImageDraw.Draw(img).text((6, 3), self.news, fill=(20, 20, 20), font=self.font)
            self.bg.paste(img, (40, 36))
            await self.display.update(40, 36, img)

    def background(self) -> Image.Image:
        ramp = np.linspace(0, 1, self.h)[:, None]
        top, bottom = np.array(BG_TOP), np.array(BG_BOTTOM)
        rows = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
        img = Image.fromarray(np.repeat(rows[:, None, :], self.w, axis=1), "RGB")
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, self.w, 28], fill=(230, 230, 235))
        d.text((10, 5), "trio-spice demo", fill=(20, 20, 20), font=self.font)
        d.rectangle([40, 80, min(self.w - 40, 620), 200], fill=(245, 245, 240), outline=(0, 0, 0))
        d.text((52, 88), "Type here:", fill=(60, 60, 60), font=self.font)
        d.text((40, self.h - 30), "Drag to draw.", fill=(200, 210, 230), font=self.font)
        return img

    async def draw_full(self) -> None:
        async with self.lock:
            await self._draw_full()

    def panel(self, number: int, width: int, height: int) -> Image.Image:
        """Monitor ``number``'s own picture: a colour of its own, its number, the size."""
        hue = (number * 67) % 256
        color = (hue, 160 - hue // 3, 255 - hue)
        img = Image.new("RGB", (width, height), color)
        d = ImageDraw.Draw(img)
        d.rectangle([0, 0, width, 28], fill=(230, 230, 235))
        d.text((10, 5), f"trio-spice demo: monitor {number}", fill=(20, 20, 20), font=self.font)
        d.text((40, 80), f"{width}x{height}", fill=(255, 255, 255), font=self.font)
        return img

    async def _draw_full(self) -> None:
        self.bg = self.background()
        await self.display.update(0, 0, self.bg)
        for number, (x, y, w, h) in enumerate(self.panels, 2):
            await self.display.update(x, y, self.panel(number, w, h))
        await self._draw_text()
        await self._draw_clock()
        await self._draw_audio()

    async def draw_clock(self) -> None:
        async with self.lock:
            await self._draw_clock()

    async def _draw_clock(self) -> None:
        img = Image.new("RGB", (120, 28), (230, 230, 235))
        now = datetime.datetime.now().strftime("%H:%M:%S")
        ImageDraw.Draw(img).text((10, 5), now, fill=(20, 20, 20), font=self.font)
        self.bg.paste(img, (self.w - 120, 0))
        await self.display.update(self.w - 120, 0, img)

    async def draw_text(self) -> None:
        async with self.lock:
            await self._draw_text()

    async def _draw_text(self) -> None:
        box_w = min(self.w - 40, 620) - 40 - 24
        img = Image.new("RGB", (box_w, 70), (245, 245, 240))
        lines = self.typed[-120:] + "_"
        d = ImageDraw.Draw(img)
        d.multiline_text(
            (0, 0),
            "\n".join(lines[i : i + 48] for i in range(0, len(lines), 48)),
            fill=(0, 0, 0),
            font=self.font,
        )
        self.bg.paste(img, (52, 114))
        await self.display.update(52, 114, img)

    async def step_ball(self) -> None:
        async with self.lock:
            await self._step_ball()

    async def _step_ball(self) -> None:
        x, y, vx, vy = self.ball
        r = self.ball_r
        old = (int(x) - r, int(y) - r)
        x, y = x + vx, y + vy
        if not r + 30 < x < self.w - r:
            vx = -vx
        if not r + 210 < y < self.h - r - 40:
            vy = -vy
        x = min(max(x, r + 30), self.w - r)
        y = min(max(y, r + 210), self.h - r - 40)
        self.ball = [x, y, vx, vy]
        new = (int(x) - r, int(y) - r)
        left, top = min(old[0], new[0]), min(old[1], new[1])
        size_w, size_h = abs(old[0] - new[0]) + 2 * r + 1, abs(old[1] - new[1]) + 2 * r + 1
        patch = self.bg.crop((left, top, left + size_w, top + size_h))
        d = ImageDraw.Draw(patch)
        cx, cy = new[0] - left, new[1] - top
        d.ellipse([cx, cy, cx + 2 * r, cy + 2 * r], fill=(240, 180, 40), outline=(90, 50, 0))
        await self.display.update(left, top, patch)

    async def handle(self, event: object) -> None:
        if self.type_key(event):
            await self.draw_text()
        else:
            await self.handle_pointer(event)

    def type_key(self, event: object) -> bool:
        """Apply a key event to the typed text; True if the text changed (to be drawn)."""
        if not isinstance(event, KeyEvent):
            return False
        code = event.scancode
        if code in SHIFT_KEYS:
            self.shift = event.pressed
            return False
        if event.pressed and code == BACKSPACE:
            self.typed = self.typed[:-1]
        elif event.pressed and code == ENTER:
            self.typed += " "
        elif event.pressed and code in KEYMAP:
            ch = KEYMAP[code]
            self.typed += _SHIFTED.get(ch, ch.upper()) if self.shift else ch
        else:
            return False
        # Only the last lines are shown: keep the text bounded however much is typed.
        self.typed = self.typed[-TYPED_KEPT:]
        return True

    async def handle_batch(self, events: list[object]) -> None:
        """Handle what arrived together, drawing the text once: a flood of key presses costs
        one redraw per batch, not one each (640 KB of keys took 14 minutes of CPU)."""
        text_changed = False
        for event in events:
            if self.type_key(event):
                text_changed = True
            else:
                await self.handle_pointer(event)
        if text_changed:
            await self.draw_text()

    async def handle_pointer(self, event: object) -> None:
        if isinstance(event, MouseButtonEvent):
            self.buttons = event.buttons
            if event.pressed and event.button == 1:
                await self.click(*self.pointer)
        elif isinstance(event, (MousePositionEvent, MouseMotionEvent)):
            if isinstance(event, MousePositionEvent):
                new = (event.x, event.y)
            else:
                new = (
                    min(max(self.pointer[0] + event.dx, 0), self.w - 1),
                    min(max(self.pointer[1] + event.dy, 0), self.h - 1),
                )
                await self.display.move_cursor(*new)
            if event.buttons & 1:
                await self.trail(self.pointer, new)
            self.pointer = new
            self.buttons = event.buttons

    async def click(self, x: int, y: int) -> None:
        """A left click: on "Tone" a chime, on "Mic" the microphones on or off."""
        if _inside(self.tone_box(), x, y):
            with contextlib.suppress(trio.WouldBlock):  # one is already waiting to play
                self.tone_send.send_nowait(None)
        elif _inside(self.mic_box(), x, y):
            if self.server_record is None:
                return
            if self.server_record.recording:
                self.server_record.stop()
            else:
                self.server_record.start()
            await self.show_audio(recording=self.server_record.recording, level=0.0)

    async def trail(self, a: tuple[int, int], b: tuple[int, int]) -> None:
        left, top = max(min(a[0], b[0]) - 4, 0), max(min(a[1], b[1]) - 4, 0)
        right, bottom = min(max(a[0], b[0]) + 5, self.w), min(max(a[1], b[1]) + 5, self.h)
        if right <= left or bottom <= top:
            return
        async with self.lock:
            # The trail goes into the background, so the ball passing over it keeps it.
            d = ImageDraw.Draw(self.bg)
            d.line([a, b], fill=(255, 80, 80), width=4)
            await self.display.update(left, top, self.bg.crop((left, top, right, bottom)))


def _inside(box: tuple[int, int, int, int], x: int, y: int) -> bool:
    return box[0] <= x < box[2] and box[1] <= y < box[3]


def chime(rate: int = 48000) -> np.ndarray:
    """Two short notes (E5 then A5), 0.4 s of 16-bit stereo with soft edges."""
    notes = []
    for freq in (659.25, 880.0):
        t = np.arange(int(0.2 * rate)) / rate
        envelope = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.01)  # 10 ms fades
        notes.append(np.sin(2 * np.pi * freq * t) * envelope * 9000)
    mono = np.concatenate(notes).astype(np.int16)
    return np.repeat(mono[:, None], 2, axis=1)


async def play_tones(server: Server, demo: Demo) -> None:
    """Play a chime for every click on "Tone", one after the other."""
    sound = chime()
    async for _ in demo.tone_receive:
        server.playback.start(48000, 2)
        await server.playback.write(sound)
        # write() returns with up to 100 ms still to be sent; STOP would drop it.
        await trio.sleep(0.2)
        server.playback.stop()


async def show_microphones(demo: Demo, events: trio.MemoryReceiveChannel[Any]) -> None:
    """The level bar follows what the clients' microphones send (the loudest frame since
    the last redraw, at most every ``LEVEL_INTERVAL`` seconds)."""
    loudest, last_draw = 0.0, 0.0
    async for event in events:
        if isinstance(event, RecordStarted):
            await demo.show_audio(level=0.0)
        elif isinstance(event, RecordData):
            loudest = max(loudest, event.level)
            now = trio.current_time()
            if now - last_draw >= LEVEL_INTERVAL:
                level = demo.level_fraction(loudest)
                if round(level * 100) != round(demo.level * 100):
                    await demo.show_audio(level=level)
                loudest, last_draw = 0.0, now
        elif isinstance(event, RecordStopped):
            await demo.show_audio(level=0.0)


async def run_demo(server: Server, display: Display, *, fps: float = 20.0) -> None:
    demo = Demo(display)
    demo.server_record = server.record
    server.on_resize(demo.resize)
    # Subscribe before drawing, so that nothing typed while the first frame is drawn is lost.
    async with (
        server.input_events() as events,
        server.agent_events() as agent_events,
        server.record_events() as record_events,
        trio.open_nursery() as nursery,
    ):
        await display.set_cursor(arrow_cursor(), 1, 1, x=demo.w // 2, y=demo.h // 2)
        await demo.draw_full()

        async def animate() -> None:
            last_second = -1
            while True:
                await demo.step_ball()
                now = math.floor(trio.current_time())
                if now != last_second:
                    last_second = now
                    await demo.draw_clock()
                await trio.sleep(1 / fps)

        async def agent_news() -> None:
            async for event in agent_events:
                if isinstance(event, ClipboardOffered) and event.has_text:
                    text = await server.clipboard.read_text()
                    if text is not None:
                        await demo.show_news("Copied: " + " ".join(text.split()))
                elif isinstance(event, FileReceived):
                    await demo.show_news(f"Received {event.name} ({event.size} bytes)")

        nursery.start_soon(animate)
        nursery.start_soon(agent_news)
        nursery.start_soon(play_tones, server, demo)
        nursery.start_soon(show_microphones, demo, record_events)
        async for event in events:
            batch: list[object] = [event]
            while len(batch) < BATCH:
                try:
                    batch.append(events.receive_nowait())
                except trio.WouldBlock:
                    break
            await demo.handle_batch(batch)


__all__ = ["Demo", "arrow_cursor", "chime", "run_demo", "to_bgrx"]
