"""End-to-end tests drive real SPICE clients (Debian's spice-gtk through GI, spice-html5 in
Debian's Chromium); their helper modules live here, next to the tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def x509_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory made by ``trio-spice gen-cert`` (QEMU's file names), once per test run."""
    from spice.certs import write_certificates

    directory = tmp_path_factory.mktemp("x509")
    write_certificates(directory)
    return str(directory)
