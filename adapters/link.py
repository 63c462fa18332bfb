"""Runs the link stage of one accepted connection over a stream.

The pure :class:`domain.link.LinkServer` parses; this decides the answers that need the
server's state (security policy, ticket, session ids, which channels exist) and enforces the
link deadline. It returns the linked request and the bytes that followed the ticket, or None
after having answered a failure and logged one line.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial

import attrs
import trio

from spice.domain.caps import CapabilitySet
from spice.domain.channels.registry import server_caps
from spice.domain.enums import (
    SPICE_TICKET_PUBKEY_BYTES,
    ChannelType,
    CommonCap,
    LinkError,
)
from spice.domain.errors import RemoteProtocolError
from spice.domain.link import (
    NEED_DATA,
    AuthTicket,
    LinkRequest,
    LinkServer,
    SaslRequested,
    SaslResponse,
    SaslStart,
)
from spice.domain.sasl import (
    SaslAuthenticator,
    SaslAuthFailed,
    SaslStep,
    SaslUser,
    mechanisms_for,
)
from spice.domain.ticket import TicketKey, TicketPolicy, TicketVerdict

log = logging.getLogger(__name__)

SERVER_COMMON_CAPS = CapabilitySet.of(
    CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SPICE, CommonCap.MINI_HEADER
)
#: With SASL on, AUTH_SASL replaces AUTH_SPICE (as reds advertises one or the other).
SASL_COMMON_CAPS = CapabilitySet.of(
    CommonCap.PROTOCOL_AUTH_SELECTION, CommonCap.AUTH_SASL, CommonCap.MINI_HEADER
)


@attrs.frozen
class Linked:
    request: LinkRequest
    trailing: bytes
    #: Whether the connection came over TLS.
    secure: bool = False
    #: Whether the ticket was the view-only password (the client's input is dropped).
    view_only: bool = False
    #: The SASL user name it logged in as (None: ticket auth).
    user: str | None = None

    @property
    def mini_header(self) -> bool:
        return CommonCap.MINI_HEADER in self.request.common_caps


@attrs.frozen
class LinkPolicy:
    """What the link stage needs to know about the server."""

    #: A fresh key for this link (the C server makes one per link: a ticket captured on one
    #: link must not open another).
    key: Callable[[], Awaitable[TicketKey]]
    ticket: TicketPolicy
    secure: bool
    #: Returns the link error for a request after auth (unknown session, no such channel),
    #: given the SASL user it authenticated as (None: ticket).
    admit: Callable[[LinkRequest, str | None], LinkError]
    #: Returns the link error to put in the reply (NEED_SECURED, NEED_UNSECURED) or OK.
    security: Callable[[LinkRequest, bool], LinkError]
    timeout: float
    #: Runs the ticket check it is given (after any delay failed tickets earned); the default
    #: runs it at once.
    check_ticket: Callable[[Callable[[], TicketVerdict]], Awaitable[TicketVerdict]] | None = None
    #: SASL accounts by name; set, the link authenticates with SASL instead of the ticket.
    sasl_users: Callable[[], Mapping[str, SaslUser]] | None = None
    #: The SASL mechanisms allowed (None: all those the link's security permits).
    sasl_mechanisms: frozenset[str] | None = None


async def run_link(stream: trio.abc.Stream, policy: LinkPolicy, peer: str) -> Linked | None:
    link = LinkServer(sasl=policy.sasl_users is not None)
    request: LinkRequest | None = None
    key: TicketKey | None = None
    sasl: SaslAuthenticator | None = None
    try:
        with trio.fail_after(policy.timeout):
            while True:
                event = link.next_event()
                if event is NEED_DATA:
                    if link.buffered > 8192:
                        raise RemoteProtocolError(
                            "too much data before the ticket", LinkError.INVALID_DATA
                        )
                    data = await stream.receive_some(4096)
                    if not data:
                        log.info("%s: closed during the link stage", peer)
                        return None
                    link.receive_data(data)
                elif isinstance(event, LinkRequest):
                    request = event
                    err = policy.security(event, policy.secure)
                    if err != LinkError.OK:
                        # Moving a channel to the TLS port (or off it) is routine for clients.
                        moved = err in (LinkError.NEED_SECURED, LinkError.NEED_UNSECURED)
                        log.log(
                            logging.INFO if moved else logging.WARNING,
                            "%s: link refused for %s channel: %s",
                            peer,
                            _name(event.channel_type),
                            err.name,
                        )
                        await stream.send_all(link.fail(err))
                        return None
                    caps = server_caps(event.channel_type) or CapabilitySet()
                    if link.sasl:
                        # No ticket follows; the key in the reply is never used.
                        key = None
                        der = bytes(SPICE_TICKET_PUBKEY_BYTES)
                        await stream.send_all(link.send_reply(der, SASL_COMMON_CAPS, caps))
                        continue
                    key = await policy.key()
                    await stream.send_all(link.send_reply(key.public_der, SERVER_COMMON_CAPS, caps))
                elif isinstance(event, SaslRequested):
                    offer = mechanisms_for(policy.secure, policy.sasl_mechanisms)
                    if not offer:
                        log.warning(
                            "%s: no SASL mechanism may be offered on this port, closing", peer
                        )
                        link.fail(None)
                        return None
                    await stream.send_all(link.send_sasl_mechanisms(offer))
                elif isinstance(event, SaslStart | SaslResponse):
                    assert request is not None and policy.sasl_users is not None
                    if isinstance(event, SaslStart):
                        sasl = SaslAuthenticator(
                            policy.sasl_users(), event.mechanism, secrets.token_urlsafe(18)
                        )
                    assert sasl is not None
                    step = await _sasl_step(policy, sasl, event)
                    if step is None:
                        log.warning(
                            "%s: link of %s channel refused: SASL %s authentication failed: %s",
                            peer,
                            _name(request.channel_type),
                            sasl.mechanism,
                            sasl.failure,
                        )
                        # As red-stream: a refused SASL client is closed without an answer.
                        link.fail(None)
                        return None
                    await stream.send_all(
                        link.send_sasl_challenge(step.data, complete=step.complete)
                    )
                    if step.complete:
                        assert step.user is not None
                        err = policy.admit(request, step.user.name)
                        await stream.send_all(link.send_result(err))
                        if err != LinkError.OK:
                            log.warning(
                                "%s: link of %s channel refused: %s",
                                peer,
                                _name(request.channel_type),
                                err.name,
                            )
                            return None
                        return Linked(
                            request,
                            link.trailing_data(),
                            policy.secure,
                            step.user.view_only,
                            step.user.name,
                        )
                elif isinstance(event, AuthTicket):
                    assert request is not None and key is not None
                    check = partial(_check_ticket, policy.ticket, key, event.encrypted)
                    verdict = await (policy.check_ticket or _check_at_once)(check)
                    err = verdict.error
                    if err == LinkError.OK:
                        err = policy.admit(request, None)
                    await stream.send_all(link.send_result(err))
                    if err != LinkError.OK:
                        what = (
                            f"authentication failed: {verdict.reason}"
                            if verdict.error == LinkError.PERMISSION_DENIED
                            else err.name
                        )
                        log.warning(
                            "%s: link of %s channel refused: %s",
                            peer,
                            _name(request.channel_type),
                            what,
                        )
                        return None
                    return Linked(request, link.trailing_data(), policy.secure, verdict.view_only)
    except RemoteProtocolError as exc:
        code = exc.link_error.name if exc.link_error is not None else "no answer"
        log.warning("%s: bad link: %s (%s), closing", peer, str(exc), code)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(link.fail(exc.link_error))
        return None
    except trio.TooSlowError:
        log.warning("%s: link not completed within %.0f s, closing", peer, policy.timeout)
        return None
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        log.info("%s: connection lost during the link stage (%s)", peer, str(exc))
        return None


async def _sasl_step(
    policy: LinkPolicy, sasl: SaslAuthenticator, event: SaslStart | SaslResponse
) -> SaslStep | None:
    """One server step, None when authentication failed (``sasl.failure`` says why). The
    step that decides (the last, or a failure) goes through the failed-ticket pacing, so SASL
    guesses earn the same delays as tickets; the steps before it are answered at once."""
    try:
        if isinstance(event, SaslStart):
            step: SaslStep | None = sasl.start(event.data)
        else:
            step = sasl.step(event.data)
        verdict = TicketVerdict(LinkError.OK)
    except SaslAuthFailed as exc:
        sasl.failure = str(exc)
        step, verdict = None, TicketVerdict(LinkError.PERMISSION_DENIED, reason=str(exc))
    if step is None or step.complete:
        await (policy.check_ticket or _check_at_once)(lambda: verdict)
    return step


def _check_ticket(ticket: TicketPolicy, key: TicketKey, encrypted: bytes) -> TicketVerdict:
    return ticket.verdict(key.decrypt(encrypted), time.time())


async def _check_at_once(check: Callable[[], TicketVerdict]) -> TicketVerdict:
    await trio.lowlevel.checkpoint()
    return check()


def _name(channel_type: int) -> str:
    try:
        return ChannelType(channel_type).name.lower()
    except ValueError:
        return f"unknown ({channel_type})"
