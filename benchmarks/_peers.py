"""Starting and stopping the SPICE servers the benchmarks compare, and small statistics helpers.

Every server is a child process started with :class:`subprocess.Popen` and stopped by its own
pid (terminate, then kill after a grace period) from a ``finally`` block, so nothing outlives a
benchmark that fails half-way. Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
E2E = ROOT / "tests" / "e2e"
if str(E2E) not in sys.path:
    sys.path.insert(0, str(E2E))

HOST = "127.0.0.1"


# ----------------------------------------------------------------------------- processes
@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every process we started."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """Terminate one process we started (by its pid), kill it if it lingers, and reap it."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as the servers do: connections in TIME-WAIT from an earlier run don't block a listen
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc/net/tcp (no connection is
    made, so the server under test never sees a probe connection)."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] == want and line.split()[3] == "0A" for line in lines)


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {HOST}:{port} within {timeout} s")
        time.sleep(0.05)


def require_free(port: int) -> None:
    if not port_free(port):
        raise RuntimeError(f"port {HOST}:{port} is busy; choose another with the --port options")


# ----------------------------------------------------------------------------- peers
@contextlib.contextmanager
def ours(
    port: int, size: tuple[int, int] = (1024, 768), logdir: Path | None = None
) -> Iterator[str]:
    """``python -m spice`` (the demo display) on ``port``; yields a description."""
    require_free(port)
    logfile = (logdir or Path(tempfile.gettempdir())) / f"trio-spice-{port}.log"
    argv = [
        sys.executable,
        "-m",
        "spice",
        "--addr",
        HOST,
        "--port",
        str(port),
        "--disable-ticketing",
        "--size",
        f"{size[0]}x{size[1]}",
    ]
    proc = None
    with open(logfile, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
            wait_listening(port, proc, 20, "trio-spice")
            yield f"trio-spice demo (python -m spice), {size[0]}x{size[1]}"
        finally:
            stop(proc)


XORG_CONF = """\
Section "Device"
    Identifier "XSPICE"
    Driver "spiceqxl"
    Option "SpicePort" "{port}"
    Option "SpiceAddr" "127.0.0.1"
    Option "SpiceDisableTicketing" "True"
    Option "NumHeads" "1"
    Option "FrameBufferSize" "16"
    Option "SurfaceBufferSize" "128"
    Option "CommandBufferSize" "128"
EndSection
Section "InputDevice"
    Identifier "XSPICE POINTER"
    Driver     "xspice pointer"
EndSection
Section "InputDevice"
    Identifier "XSPICE KEYBOARD"
    Driver     "xspice keyboard"
EndSection
Section "Monitor"
    Identifier "Configured Monitor"
EndSection
Section "Screen"
    Identifier "XSPICE Screen"
    Monitor    "Configured Monitor"
    Device     "XSPICE"
    DefaultDepth 24
EndSection
Section "ServerLayout"
    Identifier  "XSPICE"
    Screen      "XSPICE Screen"
    InputDevice "XSPICE KEYBOARD"
    InputDevice "XSPICE POINTER"
EndSection
Section "ServerFlags"
    Option "AutoAddDevices" "False"
EndSection
"""


def free_x_display(start: int = 71) -> int:
    for n in range(start, start + 40):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number")


@contextlib.contextmanager
def xspice(port: int, client: Sequence[str] = ("xclock", "-update", "1")) -> Iterator[str]:
    """Xorg with the spiceqxl driver (Xspice: libspice-server) on ``port``, plus one X client.

    The driver reads its buffer sizes as 0 unless they are set, and without ``NumHeads`` it
    finds no output and crashes in xf86InitViewport; the ``Xspice`` wrapper script hangs on
    SIGTERM, so Xorg is run directly.
    """
    with xspice_screen(port, size=None) as screen:
        xclient = None
        try:
            if client:
                xclient = subprocess.Popen(
                    list(client),
                    env=screen.env(),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)  # let it map its window and draw
            yield (
                f"Xspice (Xorg spiceqxl, libspice-server) :{screen.number} running "
                f"{' '.join(client)}"
            )
        finally:
            stop(xclient)


@contextlib.contextmanager
def qemu(port: int) -> Iterator[str]:
    """QEMU (TCG) with a qxl VGA and SPICE on ``port``; no guest disk: the firmware's screen
    ("No bootable device") is the content."""
    if shutil.which("qemu-system-x86_64") is None:
        raise RuntimeError("qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    require_free(port)
    tmp = Path(tempfile.mkdtemp(prefix="bench-qemu-"))
    proc = None
    try:
        with open(tmp / "qemu.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    "qemu-system-x86_64",
                    "-nodefaults",
                    "-vga",
                    "qxl",
                    "-m",
                    "128",
                    "-machine",
                    "accel=tcg",
                    "-display",
                    "none",
                    "-monitor",
                    "none",
                    "-serial",
                    "none",
                    "-spice",
                    f"port={port},addr={HOST},disable-ticketing=on",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        wait_listening(port, proc, 20, "qemu")
        time.sleep(2.0)  # let the firmware run to its final screen
        yield "QEMU qxl (libspice-server), firmware screen"
    finally:
        stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- statistics
def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


# ----------------------------------------------------------------------------- Xspice, sized
class XspiceScreen:
    """A running Xorg+spiceqxl started by :func:`xspice_screen`: its X display and process."""

    def __init__(self, number: int, proc: subprocess.Popen[bytes], tmp: Path) -> None:
        self.number = number
        self.proc = proc
        self.tmp = tmp

    @property
    def display(self) -> str:
        return f":{self.number}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def env(self) -> dict[str, str]:
        return dict(os.environ, DISPLAY=self.display)


def xorg_conf(
    port: int, size: tuple[int, int] | None, options: dict[str, str] | None = None
) -> str:
    """:data:`XORG_CONF` with extra spiceqxl ``Option`` lines (e.g. ``SpiceJpegWanCompression``)
    and a ``Modes``/``Virtual`` for ``size`` in the Screen section."""
    conf = XORG_CONF.format(port=port)
    extra = "".join(f'    Option "{k}" "{v}"\n' for k, v in (options or {}).items())
    conf = conf.replace('    Option "NumHeads" "1"\n', '    Option "NumHeads" "1"\n' + extra, 1)
    if size is None:
        return conf
    width, height = size
    display = (
        '    SubSection "Display"\n'
        f"        Virtual {width} {height}\n"
        f'        Modes "{width}x{height}"\n'
        "    EndSubSection\n"
    )
    return conf.replace("    DefaultDepth 24\n", "    DefaultDepth 24\n" + display, 1)


@contextlib.contextmanager
def xspice_screen(
    port: int,
    size: tuple[int, int] | None = (1920, 1080),
    options: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[XspiceScreen]:
    """Like :func:`xspice` but with no X client, a chosen screen size and extra driver options;
    yields an :class:`XspiceScreen` so the caller can start its own X clients (and stop them
    before this block ends). The X display is set to ``size`` with xrandr if it came up
    different. ``env``: variables added to Xorg's environment (libspice-server reads some,
    such as ``SPICE_BIT_RATE``)."""
    if shutil.which("Xorg") is None:
        raise RuntimeError("Xorg not found (apt-get install xserver-xspice)")
    require_free(port)
    tmp = Path(tempfile.mkdtemp(prefix="bench-xspice-"))
    conf = tmp / "xorg.conf"
    conf.write_text(xorg_conf(port, size, options))
    number = free_x_display()
    xorg = None
    try:
        with open(tmp / "xorg.stdout", "wb") as log:
            xorg = subprocess.Popen(
                ["Xorg", "-config", str(conf), "-noreset", "-nolisten", "tcp",
                 "-logfile", str(tmp / "xorg.log"), f":{number}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        wait_listening(port, xorg, 20, "Xorg (spiceqxl)")
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            if xorg.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Xorg :{number} has no socket; see {tmp}/xorg.log")
            time.sleep(0.05)
        yield XspiceScreen(number, xorg, tmp)
    finally:
        stop(xorg)
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- clips
def render_clip(source: str, path: Path, frames: int, width: int, height: int) -> Path:
    """``frames`` frames of the ffmpeg lavfi ``source`` as raw BGRX (ffmpeg's bgr0) in
    ``path``, rendered once: a file of the right size is reused."""
    size = frames * width * height * 4
    if path.is_file() and path.stat().st_size == size:
        return path
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg not found: apt-get install ffmpeg")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
         "-frames:v", str(frames), "-pix_fmt", "bgr0", "-f", "rawvideo", str(partial)],
        check=True,
    )  # fmt: skip
    if partial.stat().st_size != size:
        raise RuntimeError(f"ffmpeg wrote {partial.stat().st_size} bytes, not {size}")
    partial.rename(path)
    return path


# ----------------------------------------------------------------------------- CPU
class CpuMeter:
    """On-CPU time of one process from ``/proc/PID/task/*/schedstat`` (nanoseconds, summed
    over threads). A thread's last count is kept after it exits, so call :meth:`sample` often
    (or run :meth:`poll_in_background`) while short-lived threads work. Threads can be picked
    out by name (``comm``), e.g. Xspice's "SPICE Worker"."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.last: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self._stop: Any = None

    def sample(self) -> None:
        base = Path(f"/proc/{self.pid}/task")
        try:
            tids = os.listdir(base)
        except OSError:
            return
        for tid in tids:
            try:
                ns = int((base / tid / "schedstat").read_text().split()[0])
                if int(tid) not in self.names:
                    self.names[int(tid)] = (base / tid / "comm").read_text().strip()
            except (OSError, ValueError, IndexError):
                continue
            self.last[int(tid)] = max(ns, self.last.get(int(tid), 0))

    def total(self, name: str | None = None) -> float:
        """Seconds on CPU so far (all threads, or those whose comm starts with ``name``)."""
        self.sample()
        return (
            sum(
                ns
                for tid, ns in self.last.items()
                if name is None or self.names.get(tid, "").startswith(name)
            )
            / 1e9
        )

    @contextlib.contextmanager
    def poll_in_background(self, interval: float = 0.01) -> Iterator[None]:
        import threading

        stop_event = threading.Event()

        def run() -> None:
            while not stop_event.wait(interval):
                self.sample()

        thread = threading.Thread(target=run, name=f"cpu-meter-{self.pid}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop_event.set()
            thread.join()
