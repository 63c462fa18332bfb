"""The errors the public API raises, all under :class:`spice.Error`.

Each also derives from the built-in exception a caller would catch without knowing this
module (a bad option is a ``ValueError``, a port that cannot be bound an ``OSError``), so
``except ValueError`` keeps working. No public call lets an ``ExceptionGroup`` out for a
single cause: the server's own task groups are unwrapped to the one error that ended them.
"""

from __future__ import annotations

__all__ = ["ConfigError", "Error", "ListenError", "ServerFailed", "ServerStateError"]


class Error(Exception):
    """Base class of every error trio-spice raises on purpose."""


class ConfigError(Error, ValueError):
    """An option or argument the server cannot use (raised at the call that passed it)."""


class ListenError(Error, OSError):
    """A listening socket could not be opened (port in use, address not on this machine,
    unknown host name, no address of the family asked for). ``str()`` is one line that names
    the address and the reason."""


class ServerStateError(Error, RuntimeError):
    """A call that does not fit the server's state (served twice, not started, stopped)."""


class ServerFailed(Error):
    """The server stopped because of an unexpected error, which is the ``__cause__``
    (raised in the calling thread by :class:`spice.ServerThread`)."""
