"""End-to-end tests drive real SPICE clients; they need Debian's spice-gtk GI bindings."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def x509_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory made by ``trio-spice gen-cert`` (QEMU's file names), once per test run."""
    from spice.certs import write_certificates

    directory = tmp_path_factory.mktemp("x509")
    write_certificates(directory)
    return str(directory)
