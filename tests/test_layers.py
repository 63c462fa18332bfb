"""The layer contract: domain is pure, adapters do not reach up to the public API.

import-linter reads the contracts in pyproject.toml; this test runs it so CI enforces them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout and "BROKEN" not in result.stdout, result.stdout


def test_domain_has_no_io_imports_even_lazily() -> None:
    """import-linter sees module-level imports; also refuse I/O modules anywhere in domain."""
    forbidden = ("trio", "socket", "ssl", "threading", "asyncio", "time", "select", "subprocess")
    offenders = []
    for path in (ROOT / "domain").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from"):
                name = words[1]
                top = name.split(".")[0]
                outer = top == "spice" and not name.startswith("spice.domain")
                if top in forbidden or top in ("domain", "adapters") or outer:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
