"""spice-gtk (through GI) plays what the application pushes and sends its microphone to the
application: RAW playback byte-exact, Opus within tolerance (a test tone's frequency within
1%), volume and mute on both channels, record frames arriving as PCM."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import trio
from gtk_client import open_gtk_client
from serving import running_server

import spice

pytestmark = pytest.mark.e2e


def tone(freq: float, seconds: float, rate: int = 48000, amplitude: int = 12000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * freq * t) * amplitude).astype(np.int16)
    return np.repeat(mono[:, None], 2, axis=1)


def dominant(pcm: np.ndarray, rate: int) -> float:
    left = pcm[:, 0].astype(np.float64)
    left = left * np.hanning(len(left))
    spectrum = np.abs(np.fft.rfft(left))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(left))


async def _play_and_receive(compression: bool, rate: int, signal: np.ndarray) -> tuple:
    with tempfile.TemporaryDirectory(prefix="gtk-audio-") as tmp:
        async with running_server(playback_compression=compression) as server:
            async with open_gtk_client(
                "127.0.0.1", server.port_bound, extra_args=["--audio", "--audio-dir", tmp]
            ) as client:
                await client.wait_for("channel-new", lambda e: e["type"] == "playback")
                while not server._core.playback.clients:  # linked and MODE sent
                    await trio.sleep(0.01)
                server.playback.start(rate, 2)
                await server.playback.write(signal)
                # Let the writer hand the last frames over before STOP.
                await trio.sleep(0.2)
                server.playback.stop()
                start = await client.wait_for("playback-start")
                stop = await client.wait_for("playback-stop", timeout=15)
                received = np.frombuffer(Path(stop["file"]).read_bytes(), "<i2").reshape(-1, 2)
                return start, received


async def test_raw_playback_is_byte_exact_at_44100() -> None:
    signal = tone(1000, 0.5, 44100)
    start, received = await _play_and_receive(False, 44100, signal)
    assert (start["channels"], start["rate"]) == (2, 44100)
    assert np.array_equal(received, signal)


async def test_opus_playback_keeps_the_tone() -> None:
    signal = tone(880, 1.0)
    start, received = await _play_and_receive(True, 48000, signal)
    assert (start["channels"], start["rate"]) == (2, 48000)
    # Opus: one 10 ms packet per frame, decoded by spice-gtk's libopus.
    assert abs(len(received) - len(signal)) <= 480
    assert abs(dominant(received, 48000) - 880) <= 8.8
    assert not np.array_equal(received[: len(signal)], signal[: len(received)])


async def test_volume_and_mute_reach_both_channels() -> None:
    async with running_server() as server:
        server.playback.set_volume(30000)
        async with open_gtk_client("127.0.0.1", server.port_bound, extra_args=["--audio"]) as c:
            vol = await c.wait_for(
                "audio-volume", lambda e: e["type"] == "playback" and e["value"] == [30000] * 2
            )
            assert vol
            while not server._core.record.clients:
                await trio.sleep(0.01)
            server.playback.set_mute(True)
            server.record.set_volume((1000, 2000))
            server.record.set_mute(True)
            await c.wait_for("audio-mute", lambda e: e["type"] == "playback" and e["value"])
            await c.wait_for(
                "audio-volume", lambda e: e["type"] == "record" and e["value"] == [1000, 2000]
            )
            await c.wait_for("audio-mute", lambda e: e["type"] == "record" and e["value"])


async def test_microphone_reaches_the_application() -> None:
    signal = tone(660, 0.5)
    with tempfile.TemporaryDirectory(prefix="gtk-audio-") as tmp:
        mic = Path(tmp) / "mic.pcm"
        mic.write_bytes(signal.astype("<i2").tobytes())
        async with running_server() as server:
            async with server.record_events() as events:
                async with open_gtk_client(
                    "127.0.0.1", server.port_bound, extra_args=["--audio"]
                ) as client:
                    await client.wait_for("channel-new", lambda e: e["type"] == "record")
                    while not server._core.record.clients:
                        await trio.sleep(0.01)
                    server.record.start()
                    await client.wait_for("record-start")
                    await client.command({"cmd": "record_send", "file": str(mic)})
                    started = await events.receive()
                    assert isinstance(started, spice.RecordStarted)
                    assert started.client is server.clients[0]
                    got = bytearray()
                    with trio.move_on_after(10):
                        while len(got) < len(signal) * 4 - 1920:
                            event = await events.receive()
                            assert isinstance(event, spice.RecordData)
                            got += event.pcm
                    pcm = np.frombuffer(bytes(got), "<i2").reshape(-1, 2)
                    assert started.mode == "opus"  # spice-gtk takes our OPUS record cap
                    assert len(pcm) >= len(signal) - 480
                    assert abs(dominant(pcm, 48000) - 660) <= 6.6
                    server.record.stop()
                    await client.wait_for("record-stop")
                    with trio.fail_after(5):
                        stopped = await events.receive()
                        while isinstance(stopped, spice.RecordData):  # frames still in flight
                            stopped = await events.receive()
                    assert isinstance(stopped, spice.RecordStopped)
                    assert stopped.reason == "stopped"
