"""Hypothesis drives the agent machine through arbitrary interleavings of a well-behaved client
(messages cut at arbitrary points, tokens obeyed, tokens granted late or never) and app calls,
and checks after every step: the client never overruns, the machine never sends more bodies
than granted nor bodies over 2048 bytes, the stream it sends decodes, a compliant client only
stalls when it withholds tokens, and no file transfer escapes its directory or its size."""

from __future__ import annotations

import posixpath

from agent_peer import GTK_CAPS, HTML5_CAPS, AgentPeer
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from spice.domain.agent import events as ev
from spice.domain.agent import messages as am
from spice.domain.agent.machine import PNG_SIGNATURE, AgentConfig, AgentMachine
from spice.domain.agent.messages import ClipboardType

TYPES = st.sampled_from([ClipboardType.UTF8_TEXT, ClipboardType.IMAGE_PNG, ClipboardType.NONE])
NAMES = st.one_of(
    st.sampled_from(
        ["a.txt", "../x", "/etc/passwd", "..", ".", "", "a/../../b", "C:\\w", "dir/", " lead"]
    ),
    st.text(max_size=20),
)


class AgentStateMachine(RuleBasedStateMachine):
    @initialize(
        caps=st.sampled_from([GTK_CAPS, HTML5_CAPS]),
        grant=st.integers(0, 30) | st.just(0xFFFFFFFF),
        copy_paste=st.booleans(),
        file_transfer=st.booleans(),
    )
    def setup(self, caps: object, grant: int, copy_paste: bool, file_transfer: bool) -> None:
        config = AgentConfig(
            copy_paste=copy_paste,
            file_transfer=file_transfer,
            clipboard_limit=3000,
            backlog_limit=4096,
            max_transfers=3,
            file_size_limit=200,
        )
        self.peer = AgentPeer(AgentMachine(config), caps=caps, grant=grant)  # type: ignore[arg-type]
        self.peer.start()
        self.next_id = 0
        self.progress: dict[int, int] = {}  # transfer id -> bytes reported
        self.sizes: dict[int, int] = {}
        self.closed: set[int] = set()
        self.resize_ids: list[int] = []
        self.check_events()

    # ---- the client -------------------------------------------------------------------------

    def send(self, msg: am.AgentMessage, cuts: list[int]) -> None:
        stream = am.encode_message(msg, selection_prefix=self.peer.selection_prefix)
        pieces, at = [], 0
        for size in cuts:
            if at >= len(stream):
                break
            pieces.append(stream[at : at + size])
            at += size
        while at < len(stream):
            pieces.append(stream[at : at + 2048])
            at += 2048
        self.peer.outbox.extend(pieces)
        self.peer.pump()
        self.check_events()

    def selection(self, data: st.DataObject) -> int:
        if not self.peer.selection_prefix:
            return 0
        return data.draw(st.sampled_from([0, 1, 2]))

    cuts = st.lists(st.integers(1, 2048), max_size=12)

    @rule(data=st.data(), cuts=cuts)
    def client_message(self, data: st.DataObject, cuts: list[int]) -> None:
        sel = self.selection(data)
        ids = sorted(self.sizes) or [0]
        options = [
            st.builds(
                am.MonitorsConfig,
                st.lists(
                    st.builds(am.MonConfig, st.integers(0, 5000), st.integers(0, 5000)),
                    max_size=3,
                ).map(tuple),
            ),
            st.builds(am.MaxClipboard, st.integers(-1, 5000)),
            st.builds(am.DisplayConfig, st.integers(0, 15), st.just(32)),
            st.builds(am.FileXferData, st.sampled_from(ids), st.binary(max_size=300)),
            st.builds(
                am.FileXferStatusMessage,
                st.sampled_from(ids),
                st.sampled_from([am.FileXferStatus.CANCELLED, am.FileXferStatus.ERROR]),
            ),
            st.builds(am.AnnounceCapabilities, st.booleans(), st.just(self.peer.caps)),
        ]
        # spice-gtk sends clipboard messages only once the agent's caps offered the clipboard
        # (which also settles the selection prefix); with copy-paste off they are dropped unread
        agent_caps = self.peer.agent_caps
        offered = agent_caps is not None and am.AgentCap.CLIPBOARD_BY_DEMAND in agent_caps
        if offered or not self.peer.machine.config.copy_paste:
            options += [
                st.builds(am.ClipboardGrab, st.lists(TYPES, max_size=3).map(tuple), st.just(sel)),
                st.builds(am.ClipboardRequest, TYPES, st.just(sel)),
                st.builds(am.ClipboardRelease, st.just(sel)),
                st.builds(am.Clipboard, TYPES, st.binary(max_size=4000), st.just(sel)),
            ]
        msg = data.draw(st.one_of(options))
        self.send(msg, cuts)

    @rule(name=NAMES, size=st.integers(0, 300), cuts=cuts)
    def client_offers_a_file(self, name: str, size: int, cuts: list[int]) -> None:
        self.next_id += 1
        self.send(am.FileXferStart.for_file(self.next_id, name, size), cuts)

    @rule(n=st.integers(1, 20))
    def client_grants_tokens(self, n: int) -> None:
        self.peer.machine.add_tokens(n)
        self.peer.granted += n
        self.peer.pump()
        self.check_events()

    # ---- the app ----------------------------------------------------------------------------

    def after_app(self) -> None:
        self.peer.pump()
        self.check_events()

    @rule(text=st.text(max_size=50), sel=st.sampled_from([0, 1, 2]))
    def app_sets_text(self, text: str, sel: int) -> None:
        self.peer.machine.set_clipboard_text(text, sel)
        self.after_app()

    @rule(body=st.binary(max_size=2500))
    def app_sets_png(self, body: bytes) -> None:
        self.peer.machine.set_clipboard_image(PNG_SIGNATURE + body)
        self.after_app()

    @rule(sel=st.sampled_from([0, 1, 2]))
    def app_grabs_lazily_and_answers(self, sel: int) -> None:
        self.peer.machine.grab_clipboard([ClipboardType.UTF8_TEXT], sel)
        self.peer.machine.send_clipboard(sel, ClipboardType.UTF8_TEXT, b"lazy")
        self.after_app()

    @rule(sel=st.sampled_from([0, 1, 2]), type_=TYPES)
    def app_requests_or_releases(self, sel: int, type_: int) -> None:
        self.peer.machine.request_clipboard(sel, type_)
        if type_ == ClipboardType.NONE:
            self.peer.machine.release_clipboard(sel)
        self.after_app()

    @rule(accept=st.booleans())
    def app_answers_resize(self, accept: bool) -> None:
        if not self.resize_ids:
            return
        rid = self.resize_ids.pop(0)
        (self.peer.machine.accept_resize if accept else self.peer.machine.refuse_resize)(rid)
        self.after_app()

    @rule(data=st.data())
    def app_handles_a_transfer(self, data: st.DataObject) -> None:
        machine = self.peer.machine
        if not machine.transfers:
            return
        xfer = machine.transfers[data.draw(st.sampled_from(sorted(machine.transfers)))]
        action = data.draw(st.sampled_from(["advance", "refuse", "cancel"]))
        if action == "cancel":
            machine.cancel_transfer(xfer.id)
        elif xfer.state.value == "OFFERED":
            if action == "refuse":
                machine.refuse_transfer(xfer.id)
                self.closed.add(xfer.id)
            else:
                machine.accept_transfer(xfer.id)
        elif xfer.state.value == "COMPLETING":
            machine.finish_transfer(xfer.id, ok=action == "advance")
            self.closed.add(xfer.id)
        self.after_app()

    # ---- checks -----------------------------------------------------------------------------

    def check_events(self) -> None:
        for event in self.peer.take_events():
            if isinstance(event, ev.FileTransferStarted):
                name = event.name
                assert name not in ("", ".", "..")
                assert "/" not in name and "\\" not in name and "\0" not in name
                assert posixpath.basename(name) == name
                joined = posixpath.normpath(posixpath.join("/downloads", name))
                assert posixpath.dirname(joined) == "/downloads"
                assert event.size <= 200
                assert event.id not in self.sizes and event.id not in self.closed
                self.sizes[event.id] = event.size
                self.progress[event.id] = 0
            elif isinstance(event, ev.FileTransferData):
                assert event.id not in self.closed
                self.progress[event.id] += len(event.data)
                assert self.progress[event.id] == event.received <= self.sizes[event.id]
            elif isinstance(event, ev.FileTransferCompleted):
                assert self.progress[event.id] == self.sizes[event.id] == event.size
            elif isinstance(event, ev.FileTransferFailed | ev.FileTransferCancelled):
                self.closed.add(event.id)
            elif isinstance(event, ev.ResizeRequest):
                self.resize_ids.append(event.request_id)
            elif isinstance(event, ev.ClipboardData):
                assert len(event.data) <= 3000
        for id_ in self.closed:
            self.sizes.pop(id_, None)

    @invariant()
    def a_compliant_client_stalls_only_when_it_withholds_tokens(self) -> None:
        machine = self.peer.machine
        assert machine.failed is None
        if self.peer.outbox:
            assert self.peer.tokens == 0
            assert machine.backlog > machine.config.backlog_limit

    @invariant()
    def nothing_grows_without_bound(self) -> None:
        machine = self.peer.machine
        assert len(machine.transfers) <= machine.config.max_transfers
        assert machine.backlog <= 2 * machine.config.backlog_limit + 3000 + 2048
        assert self.peer.tokens <= machine.window


TestAgentStateMachine = AgentStateMachine.TestCase
TestAgentStateMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
