"""The bounded CI part of the long fuzz (`benchmarks/fuzz.py`) and soak (`benchmarks/soak.py`).

The fuzz runs 20,000 mutated inputs from the real-session corpus through every parser and
asserts no finding; a planted bug shows that the harness does report one. The soak runs 500
connect/link/disconnect cycles and a few hundred idle and slow-loris connections beside a real
spice-gtk client, and asserts the server's descriptors come back to the baseline, RSS stays
within 5% and the client's frame rate within 20% of its solo figure.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from spice.domain.channels.inputs import InputsChannel
from spice.domain.messages import inputs as m

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = load("fuzz")


def test_fuzz_20000_inputs_without_a_finding() -> None:
    result = fuzz.fuzz(20000, seed=20260101)
    assert result["findings"] == [], result["findings"][:3]
    assert result["inputs"] == 20000
    # Every parser was exercised, and the real sessions themselves went through cleanly.
    assert set(result["per_parser"]) == set(fuzz.PARSERS)
    assert all(n > 1000 for n in result["per_parser"].values())
    assert result["outcomes"]["ok"] > 1000


def test_every_seed_of_the_corpus_parses_cleanly() -> None:
    seeds = fuzz.load_corpus()
    for parser, items in seeds.items():
        for data in items:
            assert fuzz.run_one(parser, data, 0, as_served=True) == "ok", parser


def test_a_planted_bug_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    handle = InputsChannel._handle

    def buggy(self: InputsChannel, msg: object) -> object:
        if isinstance(msg, m.MousePress) and msg.button > 7:
            raise IndexError("planted")
        return handle(self, msg)

    monkeypatch.setattr(InputsChannel, "_handle", buggy)
    result = fuzz.fuzz(6000, seed=3, max_findings=1)
    assert result["findings"], "the harness missed a planted IndexError"
    assert result["findings"][0]["parser"] == "inputs"
    assert "IndexError: planted" in result["findings"][0]["error"]


def test_soak_500_cycles_and_idle_and_slow_loris_beside_spice_gtk(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "soak.py"),
            "--cycles",
            "500",
            "--idle",
            "200",
            "--loris",
            "50",
            "--window",
            "4",
            "--json",
            str(out),
            "--server-log",
            str(tmp_path / "server.log"),
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=240,
    )
    assert out.exists(), proc.stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    assert result["problems"] == [], result
    assert proc.returncode == 0
    cycles = result["cycles"]
    assert cycles["cycles"] == 500 and cycles["failed"] == 0
    assert cycles["fds_after"] <= cycles["fds_baseline"]
    assert cycles["rss_growth_pct"] < 5
    load = result["load"]
    assert load["held_when_measuring"] >= 0.95 * 250
    assert load["gtk_fps_solo"] > 10 and load["fps_ratio"] >= 0.8
    assert result["fds_after_load"] <= result["fds_baseline"]
