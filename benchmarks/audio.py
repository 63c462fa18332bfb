"""Audio: latency from the application's push to spice-gtk's receipt, and the CPU one second
of Opus playback costs the server.

    .venv/bin/python benchmarks/audio.py [--pushes 50] [--seconds 10] [--json FILE]

Latency: a server on 127.0.0.1 with a spice-gtk client (tests/e2e/gtk_probe.py --audio);
the application writes one 10 ms frame, waits for the probe's ``playback-first-data`` (the
probe and this process share CLOCK_MONOTONIC), stops, and repeats; RAW and Opus. CPU: the
server's Opus encoder on ``--seconds`` of a stereo 48 kHz tone, in process (process time),
and the decoder the record channel runs. Prints a table, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

from gtk_client import open_gtk_client

import spice
from spice.domain.codecs.opus import OpusDecoder, OpusEncoder


def tone(seconds: float, rate: int = 48000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    return np.repeat(mono[:, None], 2, axis=1)


def opus_cpu(seconds: float) -> dict[str, float]:
    pcm = tone(seconds).tobytes()
    enc, dec = OpusEncoder(48000, 2), OpusDecoder(48000, 2)
    started = time.process_time()
    packets = [enc.encode(pcm[i : i + 1920]) for i in range(0, len(pcm), 1920)]
    encode = time.process_time() - started
    started = time.process_time()
    for packet in packets:
        dec.decode(packet)
    decode = time.process_time() - started
    return {
        "encode_ms_per_s": encode / seconds * 1000,
        "decode_ms_per_s": decode / seconds * 1000,
        "bytes_per_s": sum(map(len, packets)) / seconds,
    }


async def latency(compression: bool, pushes: int) -> list[float]:
    server = spice.Server(
        addr="127.0.0.1", port=0, disable_ticketing=True, playback_compression=compression
    )
    server.add_display(64, 64)
    frame = tone(0.01)
    samples: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve)
        async with open_gtk_client("127.0.0.1", server.port_bound, extra_args=["--audio"]) as c:
            await c.wait_for("channel-new", lambda e: e["type"] == "playback")
            while not server._core.playback.clients:
                await trio.sleep(0.01)
            await trio.sleep(0.5)
            for _ in range(pushes):
                mark = c.mark()
                pushed = time.monotonic()
                await server.playback.write(frame)
                got = await c.wait_for("playback-first-data", since=mark)
                samples.append((got["t"] - pushed) * 1000)
                server.playback.stop()
                await c.wait_for("playback-stop", since=mark)
        nursery.cancel_scope.cancel()
    return samples


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result: dict[str, Any] = {"opus_cpu": opus_cpu(args.seconds)}
    for name, compression in (("raw", False), ("opus", True)):
        ms = await latency(compression, args.pushes)
        result[f"latency_ms_{name}"] = {
            "median": statistics.median(ms),
            "p90": sorted(ms)[int(len(ms) * 0.9) - 1],
            "max": max(ms),
        }
    cpu = result["opus_cpu"]
    print(f"Opus encode: {cpu['encode_ms_per_s']:.1f} ms CPU per s of audio")
    print(f"Opus decode: {cpu['decode_ms_per_s']:.1f} ms CPU per s of audio")
    print(f"Opus stream: {cpu['bytes_per_s'] * 8 / 1000:.0f} kbit/s")
    for name in ("raw", "opus"):
        lat = result[f"latency_ms_{name}"]
        print(f"push -> spice-gtk ({name}): median {lat['median']:.2f} ms, p90 {lat['p90']:.2f}")
    print(json.dumps(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    trio.run(main)
