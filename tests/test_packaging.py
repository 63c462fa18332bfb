"""What gets installed: a wheel whose only top-level package is ``spice``, an editable install
that type checkers can follow without making ``domain`` or ``adapters`` importable on their
own, and every logger under ``spice``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_the_spice_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("trio_spice-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"spice"}, sorted(top)
    for needed in (
        "spice/py.typed",
        "spice/domain/ticket.py",
        "spice/domain/codecs/lz.py",
        "spice/adapters/core.py",
        "spice/errors.py",
    ):
        assert needed in names, needed
    assert not any(n.startswith(("spice/tests", "tests/", "examples/")) for n in names)


def run_outside(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the venv's Python away from the source tree, so only the installed package counts."""
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_domain_and_adapters_are_not_top_level_names(tmp_path: Path) -> None:
    for name in ("domain", "adapters"):
        result = run_outside("-c", f"import {name}", cwd=tmp_path)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, name
    result = run_outside(
        "-c",
        "import spice, spice.domain.ticket, spice.adapters.core; print(spice.__version__)",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != "0+unknown"


def test_mypy_strict_follows_the_editable_install(tmp_path: Path) -> None:
    """An application beside (not inside) the project type-checks against spice's types."""
    app = tmp_path / "app.py"
    app.write_text((ROOT / "examples" / "readme_thread.py").read_text())
    result = run_outside("-m", "mypy", "--strict", "--no-incremental", str(app), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the types are real, not Any: a wrong call is caught.
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import spice\n"
        "server = spice.Server(port='5900')\n"
        "width: str = spice.ServerThread(server).displays[0].width\n"
    )
    result = run_outside("-m", "mypy", "--strict", "--no-incremental", str(bad), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert 'Argument "port" to "Server" has incompatible type "str"' in result.stdout
    assert 'expression has type "int", variable has type "str"' in result.stdout


def _logger_names(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
        ):
            (arg,) = node.args
            names.append(ast.unparse(arg))
    return names


@pytest.mark.parametrize("layer", ["spice", "domain", "adapters"])
def test_every_logger_is_under_spice(layer: str) -> None:
    """``logging.getLogger("spice")`` sees every line: modules log under ``__name__`` (which is
    ``spice.adapters.x`` once installed) or a literal ``spice.`` name."""
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _logger_names(path):
            assert name == "__name__" or re.fullmatch(r"['\"]spice(\.\w+)*['\"]", name), (
                f"{path.relative_to(ROOT)}: getLogger({name})"
            )


def test_adapter_loggers_are_named_under_spice() -> None:
    import spice.adapters.core
    import spice.adapters.session

    assert spice.adapters.core.log.name == "spice.adapters.core"
    assert spice.adapters.session.log.name == "spice.adapters.session"
