#!/usr/bin/env bash
# Set up a machine for trio-spice: a virtualenv with the package, and with --test everything the
# test suite drives (Debian's spice-gtk, spice-html5, Chromium, tshark; playwright-core from npm).
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

if [ "$want_tests" = 1 ]; then
  apt_packages=(spice-client-gtk gir1.2-spiceclientglib-2.0 python3-gi python3-numpy python3-pil
                spice-html5 chromium tshark xvfb xterm twm xserver-xspice x11-xserver-utils xclip
                qemu-system-x86 nasm gstreamer1.0-plugins-base gstreamer1.0-plugins-good
                gstreamer1.0-libav gstreamer1.0-plugins-bad
                libsasl2-modules)
  missing=()
  # Node.js and npm come with this kind of machine; Debian's packages are the fallback.
  command -v npm >/dev/null || apt_packages+=(nodejs npm)
  for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: need root to install: ${missing[*]}" >&2
      exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# A strict editable install: a tree of links under build/ that holds only the spice package
# (mypy and IDEs follow it, unlike setuptools' default import hook, and domain/adapters do not
# become top-level names as with the compat mode's path entry). Edits show at once; a new
# module file needs this script (or the pip line) run again.
editable=(--config-settings editable_mode=strict)
if [ "$want_tests" = 1 ]; then
  .venv/bin/python -m pip install -q "${editable[@]}" -e '.[test]'
  if [ -f package.json ]; then
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; else npm install --no-audit --no-fund --silent; fi
  fi
else
  .venv/bin/python -m pip install -q "${editable[@]}" -e .
fi
# Compile the numba image codecs once (tens of seconds) into numba's cache beside the sources,
# so servers and tests start with them loaded in milliseconds.
.venv/bin/python -c "from spice.domain.codecs.select import warm_up; warm_up()"
# Outside the project the installed link tree is imported, and numba keys its cache by the
# path it imported from: warm that copy too.
root=$(pwd)
(cd / && "$root/.venv/bin/python" -c "from spice.domain.codecs.select import warm_up; warm_up()")
if [ "$want_tests" = 1 ]; then
  # The tests also decode QUIC in-process (the server never does): compile that now too, or
  # the first test that needs it stalls its event loop for the compile.
  .venv/bin/python -c "import numpy as np; from spice.domain.codecs import quic; quic.decode_quic(quic.encode_quic_rgb32(np.zeros((2, 3, 4), np.uint8)))"
fi
