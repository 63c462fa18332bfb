"""`trio-spice adduser` writes a users file without the password, reading it from stdin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from spice.sasl import load_users


def test_adduser_from_stdin(tmp_path: Path) -> None:
    path = tmp_path / "users"
    for name, extra in [("alice", []), ("viewer", ["--view-only"]), ("alice", [])]:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, spice.cli; sys.exit(spice.cli.main())",
                "adduser",
                str(path),
                name,
                *extra,
            ],
            input="s3cret-pw\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    text = path.read_text()
    assert "s3cret-pw" not in text
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    users = load_users(path)
    assert sorted(users) == ["alice", "viewer"]
    assert users["viewer"].view_only and not users["alice"].view_only
    bad = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, spice.cli; sys.exit(spice.cli.main())",
            "adduser",
            str(path),
            "bad name",
        ],
        input="x\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "user names" in bad.stderr
