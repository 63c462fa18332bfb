"""A byte-level mutation fuzzer over every client-to-server parser of the pure core.

    .venv/bin/python benchmarks/fuzz.py --inputs 1000000           # the long run (~minutes)
    .venv/bin/python benchmarks/fuzz.py --inputs 20000 --seed 7     # what CI runs

Seeds are `benchmarks/corpus/` (real spice-gtk and spice-html5 sessions, see
`capture_corpus.py`). Each input is one seed of a parser, mutated 1 to 8 times (bit flips,
interesting bytes and integers, inserts, deletes, duplicated or spliced ranges, and
message-aware edits of a mini header's type or size), then fed to a fresh machine in random
chunks the way the adapters feed it:

* `link`: `LinkServer`, replying to a link request and accepting any ticket, then the trailing
  bytes into the main channel machine;
* `main`: `MainChannel`, with its agent messages passed to an `AgentMachine` as the session does;
* `display`, `inputs`, `cursor`, `playback`, `record` (recording or not, RAW or OPUS offered).

The only exceptions a client may cause are the domain's `RemoteProtocolError` (which covers
message decode and agent errors) and `ChannelClosed` (DISCONNECTING). Anything else, or a
machine that buffers more than one message's worth, is a **finding**: the input is written to
`--findings` and the run exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import struct
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spice.domain.agent.machine import AgentMachine  # noqa: E402
from spice.domain.caps import CapabilitySet  # noqa: E402
from spice.domain.channel import ChannelClosed, ChannelConnection  # noqa: E402
from spice.domain.channels.cursor import CursorChannel  # noqa: E402
from spice.domain.channels.display import DisplayChannel  # noqa: E402
from spice.domain.channels.inputs import InputsChannel  # noqa: E402
from spice.domain.channels.main import MainChannel  # noqa: E402
from spice.domain.channels.playback import PlaybackChannel  # noqa: E402
from spice.domain.channels.record import RecordChannel  # noqa: E402
from spice.domain.enums import LinkError  # noqa: E402
from spice.domain.errors import RemoteProtocolError  # noqa: E402
from spice.domain.link import NEED_DATA, AuthTicket, LinkRequest, LinkServer  # noqa: E402
from spice.domain.messages import main as main_msgs  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
PARSERS = ("link", "main", "display", "inputs", "cursor", "playback", "record")
#: What a client may legitimately cause.
EXPECTED = (RemoteProtocolError, ChannelClosed)
#: Any pub key works for the machine (it only checks the length).
PUB_KEY = bytes(162)

INTERESTING_8 = (0, 1, 0x7F, 0x80, 0xFF)
INTERESTING_16 = (0, 1, 0x7FFF, 0x8000, 0xFFFF, 101, 104, 107, 111)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x10000, 4096, 65536)


class Finding(Exception):
    """An input made a parser do what a client must never be able to make it do."""


# -- the targets ---------------------------------------------------------------------------------


def chunks(data: bytes, rnd: random.Random) -> list[bytes]:
    if rnd.random() < 0.5:
        return [data]
    out, i = [], 0
    while i < len(data):
        n = rnd.choice((1, 2, 3, 6, 7, 64, 4096))
        out.append(data[i : i + n])
        i += n
    return out


def drain(machine: ChannelConnection, agent: AgentMachine | None = None) -> int:
    count = 0
    while (event := machine.next_event()) is not NEED_DATA:
        if event is None:
            raise Finding("next_event returned None")
        count += 1
        if agent is not None and isinstance(
            event, (main_msgs.AgentStart, main_msgs.ClientAgentData, main_msgs.ClientAgentToken)
        ):
            agent.handle(event)
            while agent.next_event() is not NEED_DATA:
                pass
            agent.data_to_send()
    machine.data_to_send()  # automatic answers must always encode
    # Never more than one message's worth is held waiting for the rest.
    if machine.buffered > 18 + machine.max_message_size:
        raise Finding(f"{machine.buffered} bytes buffered, limit {machine.max_message_size}")
    return count


def feed_channel(
    machine: ChannelConnection, data: bytes, rnd: random.Random, agent: AgentMachine | None = None
) -> int:
    events = 0
    for piece in chunks(data, rnd):
        machine.receive_data(piece)
        events += drain(machine, agent)
    return events


def make_main(rnd: random.Random) -> MainChannel:
    caps = CapabilitySet.of(1, 2) if rnd.random() < 0.5 else CapabilitySet.of()
    machine = MainChannel(mini_header=True, client_caps=caps)
    machine.start(
        session_id=1,
        display_channels=1,
        supported_mouse_modes=3,
        current_mouse_mode=2,
        multi_media_time=0,
        name="fuzz",
    )
    return machine


def target_main(data: bytes, rnd: random.Random) -> int:
    return feed_channel(make_main(rnd), data, rnd, AgentMachine())


def target_display(data: bytes, rnd: random.Random) -> int:
    machine = DisplayChannel(
        mini_header=True,
        client_caps=CapabilitySet.of(*rnd.sample(range(16), rnd.randint(0, 6))),
        server_caps=CapabilitySet.of(0, 6, 7),
        image_compression=rnd.choice(("auto_glz", "lz", "off", "quic")),
    )
    return feed_channel(machine, data, rnd)


def target_inputs(data: bytes, rnd: random.Random) -> int:
    machine = InputsChannel(mini_header=True, mouse_mode=rnd.choice((1, 2)))  # type: ignore[arg-type]
    machine.start(0)
    return feed_channel(machine, data, rnd)


def target_cursor(data: bytes, rnd: random.Random) -> int:
    machine = CursorChannel(mini_header=True)
    machine.start(0, 0, True, None)
    return feed_channel(machine, data, rnd)


def target_playback(data: bytes, rnd: random.Random) -> int:
    machine = PlaybackChannel(mini_header=True, client_caps=CapabilitySet.of(1, 2, 3))
    machine.start_link(0)
    return feed_channel(machine, data, rnd)


def target_record(data: bytes, rnd: random.Random) -> int:
    machine = RecordChannel(
        mini_header=True,
        client_caps=CapabilitySet.of(1, 2),
        server_caps=CapabilitySet.of(1, 2) if rnd.random() < 0.8 else CapabilitySet.of(1),
    )
    if rnd.random() < 0.8:
        machine.start(frequency=48000, channels=rnd.choice((1, 2, 2)))
    return feed_channel(machine, data, rnd)


def target_link(data: bytes, rnd: random.Random) -> int:
    link = LinkServer()
    events = 0
    pieces = chunks(data, rnd)
    for i, piece in enumerate(pieces):
        link.receive_data(piece)
        while True:
            event = link.next_event()
            if event is NEED_DATA:
                break
            events += 1
            if isinstance(event, LinkRequest):
                link.send_reply(PUB_KEY, CapabilitySet.of(0, 1, 3), CapabilitySet.of())
            elif isinstance(event, AuthTicket):
                if len(event.encrypted) != 128:
                    raise Finding(f"ticket of {len(event.encrypted)} bytes")
                link.send_result(LinkError.OK)
                # The rest of the stream goes to a main channel, as after a real link.
                rest = link.trailing_data() + b"".join(pieces[i + 1 :])
                return events + feed_channel(make_main(rnd), rest, rnd, AgentMachine())
    return events


TARGETS: dict[str, Callable[[bytes, random.Random], int]] = {
    "link": target_link,
    "main": target_main,
    "display": target_display,
    "inputs": target_inputs,
    "cursor": target_cursor,
    "playback": target_playback,
    "record": target_record,
}


class AsServed(random.Random):
    """Makes every ``rnd.random() < p`` choice of a target true: the set-up the real server
    uses (Opus offered for the microphone, a stream recording, the client's caps)."""

    def random(self) -> float:
        return 0.0


def run_one(parser: str, data: bytes, seed: int, *, as_served: bool = False) -> str:
    """Run one input; returns "ok" or the expected exception's name; raises Finding."""
    rnd = AsServed(seed) if as_served else random.Random(seed)
    try:
        TARGETS[parser](data, rnd)
    except EXPECTED as exc:
        return type(exc).__name__
    except Finding:
        raise
    except Exception as exc:
        raise Finding(f"{type(exc).__name__}: {exc}") from exc
    return "ok"


# -- the corpus and the mutations ----------------------------------------------------------------


def load_corpus(path: Path = CORPUS) -> dict[str, list[bytes]]:
    index = json.loads((path / "index.json").read_text())
    seeds: dict[str, list[bytes]] = {p: [] for p in PARSERS}
    for entry in index:
        seeds[entry["parser"]].append((path / entry["file"]).read_bytes())
    # The playback client sends nothing of its own: seed it with the base messages real
    # clients send on every channel (the cursor channel's ACK_SYNC/ACK bytes).
    if not seeds["playback"]:
        seeds["playback"] = list(seeds["cursor"]) or [b""]
    return seeds


def mini_messages(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each mini-header message found walking from the start."""
    out, i = [], 0
    while i + 6 <= len(data):
        _t, size = struct.unpack_from("<HI", data, i)
        out.append((i, size))
        i += 6 + size
    return out


def mutate(data: bytes, rnd: random.Random, others: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        op = rnd.randrange(12)
        n = len(buf)
        if op == 0 and n:
            buf[rnd.randrange(n)] ^= 1 << rnd.randrange(8)
        elif op == 1 and n:
            buf[rnd.randrange(n)] = rnd.choice(INTERESTING_8)
        elif op == 2 and n >= 2:
            i = rnd.randrange(n - 1)
            buf[i : i + 2] = struct.pack("<H", rnd.choice(INTERESTING_16))
        elif op == 3 and n >= 4:
            i = rnd.randrange(n - 3)
            buf[i : i + 4] = struct.pack("<I", rnd.choice(INTERESTING_32))
        elif op == 4:
            i = rnd.randint(0, n)
            buf[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
        elif op == 5 and n:
            i = rnd.randrange(n)
            del buf[i : i + rnd.randint(1, 16)]
        elif op == 6 and n:
            i = rnd.randrange(n)
            j = min(n, i + rnd.randint(1, 64))
            buf[i:i] = buf[i:j]
        elif op == 7 and others:
            other = rnd.choice(others)
            if other:
                i = rnd.randrange(len(other))
                piece = other[i : i + rnd.randint(1, 256)]
                k = rnd.randint(0, n)
                buf[k:k] = piece
        elif op == 8 and n:
            del buf[rnd.randint(0, n - 1) :]
        elif op in (9, 10):
            # Message-aware: a mini header's type or size.
            msgs = mini_messages(bytes(buf))
            if msgs:
                off, _size = rnd.choice(msgs)
                if op == 9:
                    struct.pack_into("<H", buf, off, rnd.choice((*INTERESTING_16, 1, 2, 3, 6)))
                else:
                    struct.pack_into("<I", buf, off + 2, rnd.choice((*INTERESTING_32, 0, 2, 5)))
        elif op == 11 and n:
            # A body cut short or grown, with its header kept consistent.
            msgs = mini_messages(bytes(buf))
            if msgs:
                off, size = rnd.choice(msgs)
                size = min(size, n - off - 6)  # a header may already lie about its size
                new = max(0, size + rnd.randint(-8, 8))
                body = bytes(buf[off + 6 : off + 6 + size])
                body = body[:new] + bytes(max(0, new - len(body)))
                buf[off : off + 6 + size] = (
                    struct.pack("<HI", buf[off] | buf[off + 1] << 8, new) + body
                )
    return bytes(buf)


def fuzz(
    inputs: int,
    seed: int = 0,
    *,
    corpus: Path = CORPUS,
    findings_dir: Path | None = None,
    max_findings: int = 20,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    seeds = load_corpus(corpus)
    parsers = [p for p in PARSERS if seeds[p]]
    rnd = random.Random(seed)
    outcomes: Counter[str] = Counter()
    per_parser: Counter[str] = Counter()
    findings: list[dict[str, Any]] = []
    start = time.perf_counter()
    # Every seed once, unmutated: the real sessions must pass as they are.
    plan = [(p, s, False) for p in parsers for s in seeds[p]]
    for i in range(inputs):
        if i < len(plan):
            parser, data, _ = plan[i]
        else:
            parser = rnd.choice(parsers)
            data = mutate(rnd.choice(seeds[parser]), rnd, seeds[rnd.choice(parsers)])
        run_seed = rnd.getrandbits(32)
        per_parser[parser] += 1
        try:
            outcomes[run_one(parser, data, run_seed)] += 1
        except Finding as exc:
            outcomes["FINDING"] += 1
            digest = hashlib.sha1(data).hexdigest()[:12]
            record = {
                "parser": parser,
                "seed": run_seed,
                "error": str(exc),
                "trace": traceback.format_exception(exc.__cause__ or exc)[-3:],
                "input": data.hex(),
                "sha1": digest,
            }
            findings.append(record)
            if findings_dir is not None:
                findings_dir.mkdir(parents=True, exist_ok=True)
                (findings_dir / f"{parser}-{digest}.json").write_text(json.dumps(record, indent=1))
            if len(findings) >= max_findings:
                break
        if progress is not None and (i + 1) % 50000 == 0:
            progress(i + 1, time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    return {
        "inputs": sum(per_parser.values()),
        "seconds": round(elapsed, 1),
        "inputs_per_second": round(sum(per_parser.values()) / elapsed) if elapsed else None,
        "seed": seed,
        "corpus_files": sum(len(seeds[p]) for p in parsers),
        "per_parser": dict(per_parser),
        "outcomes": dict(outcomes),
        "findings": findings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    def progress(done: int, seconds: float) -> None:
        print(f"  {done:>9,} inputs  {seconds:6.0f} s  {done / seconds:7.0f}/s", flush=True)

    result = fuzz(
        args.inputs, args.seed, corpus=args.corpus, findings_dir=args.findings, progress=progress
    )
    print(f"\n{'parser':10} {'inputs':>10}")
    for name, count in sorted(result["per_parser"].items()):
        print(f"{name:10} {count:>10,}")
    print(f"outcomes: {result['outcomes']}")
    for finding in result["findings"][:5]:
        print(f"FINDING {finding['parser']}: {finding['error']}\n  {''.join(finding['trace'])}")
    summary = {k: v for k, v in result.items() if k != "findings"}
    summary["findings"] = len(result["findings"])
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
