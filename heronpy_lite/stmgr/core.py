"""The stream manager core: what arrives on each link in, what to do out. No
asyncio, no sockets; time is passed in.

Theory of operation
-------------------
`StreamManagerCore` decides; `server.py` reads, feeds it, does what it says
and waits. Its inputs are events on *links* (connections) and on the
*outlets* (the bounded ways out, one per local task and per peer, named
``"task <id>"`` and ``"stmgr <container>"``)::

    accepted() ─────────────┐
    peer_connected(c)       │            ┌─► Forward(outlet, frame)  data: may wait for room
    tmaster_connected()     │            ├─► Send(outlet, frame)     control: never waits
    received(link, frames) ─┼─► core ────┼─► Reply(link, frame)      to that connection only
    closed(link)            │  routing   ├─► Attach / Detach(outlet, link)
    congested(outlet)       │  XOR acks  ├─► Pause / Resume(link)    stop / start reading it
    relieved(outlet)        │  backpr.   ├─► WatchRelief(outlet)     call relieved() when drained
    tick(now) ──────────────┘            ├─► ConnectPeer(c, host, port)
                                         └─► Close(link, reason)

A link has a `Role`. With authentication on (a topology secret), every
link starts with the handshake (`wire/handshake.py`): an accepted
connection is UNAUTHENTICATED, ours are AUTHENTICATING, and both may send
nothing but the handshake's two messages until it succeeds; a failed
handshake closes that connection with one log line. An authenticated (or,
with authentication off, a new) accepted connection is PENDING until its
first message says who it is (`RegisterInstance`: an INSTANCE;
`HelloStmgr`: a PEER sending to us). The stream manager's own connections
are PEER_OUT (to a peer: only we write on it) and TMASTER once
authenticated. `ALLOWED` is the protocol as data: what a link in each role
may send. Anything else, or a frame that claims to come from a task the
link is not (an instance is its own task only; a peer, the tasks of its
container only), closes that link with one log line; nothing else is
disturbed. Until a link has said who it is, frames above
``heron.network.unauthenticated.max.frame.bytes`` are refused
(`frame_limit`), and at most ``heron.network.max.connections`` accepted
connections are open at once.

Nobody takes over a live link: a registration for a task whose instance
is connected is refused (as the tmaster refuses one for a container whose
stream manager is alive), and an ACK frame is accepted only from a task
that could have received a tuple of the spout's trees (the spout itself,
or a task of a component downstream of it), on that task's own link. So a
stranger can neither divert a task's tuples nor ack trees whose tuples it
never saw: "acked but lost" cannot be forged.

DATA frames are routed by destination task without decoding their bodies:
a local task's outlet or its container's peer outlet. ACK frames for a
local spout task feed the XOR tracker (`acking.py`), whose verdicts go to
that spout; others are routed like data. Congestion of a local task's outlet
feeds the backpressure controller (`backpressure.py`), whose pauses become
Pause/Resume of instance links and throttle notices to local spouts, and
whose notices go to every peer.

An instance is sent the physical plan before any tuple: one that registers
before the plan is known is attached to its outlet when the plan arrives
(its tuples wait in the outlet meanwhile).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heronpy_lite.errors import AuthenticationFailed, RemoteProtocolError
from heronpy_lite.stmgr.acking import make_tracker
from heronpy_lite.stmgr.alignment import Alignment, Released
from heronpy_lite.stmgr.backpressure import BackpressureController, Notice, Strategy
from heronpy_lite.stmgr.outlet import OutletStatistics
from heronpy_lite.stmgr.routing import RoutingTable
from heronpy_lite.wire import messages as m
from heronpy_lite.wire import metric_names as names
from heronpy_lite.wire.frames import (
    DEFAULT_MAX_FRAME_BYTES,
    AckFrame,
    ControlFrame,
    DataFrame,
    Frame,
    MarkerFrame,
    encode_ack,
    encode_marker,
)
from heronpy_lite.wire.handshake import Handshake
from heronpy_lite.wire.plan import PackingPlan, PhysicalPlan

log = logging.getLogger(__name__)


class Role(enum.Enum):
    UNAUTHENTICATED = "unauthenticated"  # accepted; the handshake is not done
    AUTHENTICATING = "authenticating"  # ours (to a peer, to the tmaster); the handshake is not done
    PENDING = "pending"  # accepted; has not said who it is
    INSTANCE = "instance"  # a local instance
    PEER = "peer"  # a peer stream manager's connection to us: it sends, we read
    PEER_OUT = "peer out"  # our connection to a peer: we send, it never does
    TMASTER = "tmaster"  # our connection to the topology master


#: what a link in each role may send: frame classes, and the control message
#: classes inside CONTROL frames
_HANDSHAKE = frozenset({m.AuthHello, m.AuthProof})

ALLOWED: dict[Role, frozenset[type]] = {
    Role.UNAUTHENTICATED: _HANDSHAKE,
    Role.AUTHENTICATING: _HANDSHAKE,
    Role.PENDING: frozenset({m.RegisterInstance, m.HelloStmgr}),
    Role.INSTANCE: frozenset(
        {
            DataFrame,
            AckFrame,
            m.InstanceStatus,
            # EFFECTIVELY_ONCE
            MarkerFrame,
            m.StateStored,
            m.CheckpointFailed,
            m.Restored,
        }
    ),
    Role.PEER: frozenset({DataFrame, AckFrame, m.BackpressureNotice, MarkerFrame, m.EpochStart}),
    Role.PEER_OUT: frozenset(),
    Role.TMASTER: frozenset(
        {
            m.PhysicalPlanUpdate,
            m.Rejected,
            # EFFECTIVELY_ONCE
            m.StartCheckpoint,
            m.CheckpointComplete,
            m.Restore,
            m.Resume,
        }
    ),
}

#: EFFECTIVELY_ONCE: the control messages that belong to an epoch, and so are dropped
#: unless the link is in the stream manager's epoch (data, ack and marker frames are
#: filtered the same way in `_received_stateful`)
_OF_AN_EPOCH = frozenset({m.StateStored, m.CheckpointFailed})


@dataclass(eq=False, slots=True)
class Link:
    """One connection, as the core knows it."""

    id: int
    role: Role
    task: int | None = None  # INSTANCE
    container: int | None = None  # PEER, PEER_OUT
    pid: int = 0  # INSTANCE
    #: EFFECTIVELY_ONCE: the epoch what it sends belongs to (-1: none, dropped)
    epoch: int = -1
    #: ... and the oldest epoch it may enter (a replaced instance: the next one)
    min_epoch: int = -1
    handshake: Handshake | None = None  # UNAUTHENTICATED, AUTHENTICATING
    then: Role | None = None  # AUTHENTICATING: PEER_OUT or TMASTER
    inbound: bool = False
    over_limit: bool = False  # accepted while heron.network.max.connections were open

    def __repr__(self) -> str:
        who = f" task {self.task}" if self.task is not None else ""
        who += f" container {self.container}" if self.container is not None else ""
        return f"<link {self.id} {self.role.value}{who}>"


# -- actions --


@dataclass(frozen=True, slots=True)
class Forward:
    """Data for ``outlet``: write it, or wait for room and write it."""

    outlet: str
    frame: bytes
    tuples: int = 0


@dataclass(frozen=True, slots=True)
class Send:
    """Control for ``outlet``: never waits (refused: close its connection)."""

    outlet: str
    frame: bytes


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame for one connection only."""

    link: Link
    frame: bytes


@dataclass(frozen=True, slots=True)
class Attach:
    """``outlet`` writes to ``link``'s connection from now on (what it queued first)."""

    outlet: str
    link: Link


@dataclass(frozen=True, slots=True)
class Detach:
    outlet: str
    link: Link


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop reading ``link`` (backpressure)."""

    link: Link


@dataclass(frozen=True, slots=True)
class Resume:
    link: Link


@dataclass(frozen=True, slots=True)
class WatchRelief:
    """Call `relieved` once ``outlet`` has drained below its low watermark."""

    outlet: str


@dataclass(frozen=True, slots=True)
class ConnectPeer:
    """Connect (again) to the stream manager of ``container``; `peer_connected` after."""

    container: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Close:
    link: Link
    reason: str
    #: drop what is still unsent on it, both ways (a restore: it is of an older epoch)
    abort: bool = False


@dataclass(frozen=True, slots=True)
class Purge:
    """Drop what ``outlet`` queues for a destination that is not connected (a
    restore: it belongs to an epoch that is over)."""

    outlet: str


Action = (
    Forward
    | Send
    | Reply
    | Attach
    | Detach
    | Pause
    | Resume
    | WatchRelief
    | ConnectPeer
    | Close
    | Purge
)


def task_outlet(task: int) -> str:
    return f"task {task}"


def peer_outlet(container: int) -> str:
    return f"stmgr {container}"


@dataclass(slots=True)
class _Instance:
    """A local task's current connection and last reported status."""

    link: Link | None = None
    attached: bool = False
    status: m.InstanceStatus | None = None


class StreamManagerCore:
    def __init__(
        self,
        *,
        topology: str,
        container: int,
        packing: PackingPlan,
        components: Mapping[str, Any],
        strategy: Strategy,
        message_timeout_secs: float | None,
        heartbeat_interval_secs: float,
        host: str,
        pid: int,
        restarts: int,
        now: float,
        stateful: bool = False,
        alignment_buffer_bytes: int = 16 << 20,
        secret: bytes | None = None,
        max_connections: int = 1024,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        unauthenticated_max_frame_bytes: int = 4096,
    ) -> None:
        self.topology = topology
        self.secret = secret
        self.max_connections = max_connections
        self.max_frame_bytes = max_frame_bytes
        self.unauthenticated_max_frame_bytes = unauthenticated_max_frame_bytes
        self.inbound = 0
        self.refused_connections = 0
        self.failed_handshakes = 0
        self.container = container
        self.host = host
        self.pid = pid
        self.restarts = restarts
        self.port = 0
        self.routing = RoutingTable(packing, container)
        self.backpressure = BackpressureController(
            strategy,
            spouts=[n for n, c in components.items() if c.get("spout")],
            upstream={n: set(c.get("inputs", [])) for n, c in components.items()},
            task_component=self.routing.task_component,
        )
        self.tracker = make_tracker(message_timeout_secs, now)
        self.plan: PhysicalPlan | None = None
        self.tmaster: Link | None = None
        self.heartbeat_interval = heartbeat_interval_secs
        self._next_heartbeat = now
        self._next_expiry = now
        self._ids = itertools.count(1)
        self._instances = {t: _Instance() for t in self.routing.local_tasks}
        #: peer container -> the address we connect to it at
        self._peer_addresses: dict[int, tuple[str, int]] = {}
        self._paused: frozenset[str] = frozenset()
        #: task -> its outlet's name, for every task of the plan (the routing of DATA)
        self._outlet_of: dict[int, str] = {
            task: task_outlet(task) if c == container else peer_outlet(c)
            for task, c in self.routing.task_container.items()
        }
        self.unroutable_frames = 0
        self.protocol_errors = 0
        #: EFFECTIVELY_ONCE (docs/decisions/0029-effectively-once.md): the epoch, the
        #: alignment of local bolt tasks, a restore in progress
        self.stateful = stateful
        self.epoch = -1
        sources = {
            task: frozenset(
                t
                for source in components.get(self.routing.task_component[task], {}).get(
                    "inputs", []
                )
                for t in packing.component_tasks(source)
            )
            for task in self.routing.local_tasks
        }
        self.alignment = Alignment(sources, alignment_buffer_bytes)
        self._restoring: set[int] | None = None  # local tasks yet to answer Restore
        self._restore_failures: list[list[Any]] = []
        #: peer links in an epoch this stream manager has not entered: not read until it has
        self._ahead: dict[int, Link] = {}
        self.dropped_of_old_epoch = 0
        #: checkpoints declined at the start (a spout not ready); alignment counts its own
        self.declined_at_start = 0
        #: the latest complete checkpoint the tmaster announced, and when it arrived
        self.completed: m.CheckpointComplete | None = None
        self.completed_at = 0.0
        #: spout component -> the components that can receive a tuple of its trees
        self._reaches = _downstream(components)

    # -- the outlets the runner must create --

    def outlets(self) -> dict[str, bool]:
        """Every outlet, name -> whether it leads to a local instance."""
        local = {task_outlet(t): True for t in sorted(self.routing.local_tasks)}
        return {**local, **{peer_outlet(c): False for c in self.routing.peers}}

    # -- links --

    def accepted(self) -> Link:
        """A new inbound connection; it must authenticate (with a secret) and say who
        it is first. Send it `greeting` before reading it."""
        self.inbound += 1
        over = self.inbound > self.max_connections
        if self.secret is None:
            return Link(next(self._ids), Role.PENDING, inbound=True, over_limit=over)
        handshake = Handshake(self.secret, accepting=True)
        return Link(
            next(self._ids),
            Role.UNAUTHENTICATED,
            handshake=handshake,
            inbound=True,
            over_limit=over,
        )

    def greeting(self, link: Link) -> list[Action]:
        """What to do first on an accepted link: refuse it if too many are open, send
        the handshake's hello if there is one."""
        if link.over_limit:
            self.refused_connections += 1
            if self.refused_connections <= 5 or self.refused_connections % 1000 == 0:
                log.warning(
                    "refusing a connection: %d open, at most %d (%d refused so far)",
                    self.inbound - 1,
                    self.max_connections,
                    self.refused_connections,
                )
            return [Close(link, "too many connections")]
        if link.handshake is not None:
            return [Reply(link, link.handshake.hello())]
        return []

    def frame_limit(self, link: Link) -> int:
        """The largest frame to read from ``link`` now: small until it has said who it is."""
        if link.role in (Role.UNAUTHENTICATED, Role.AUTHENTICATING, Role.PENDING):
            return self.unauthenticated_max_frame_bytes
        return self.max_frame_bytes

    def _outbound(self, then: Role, container: int | None) -> tuple[Link, list[Action]] | None:
        """An authenticating link of ours, or None without a secret."""
        if self.secret is None:
            return None
        handshake = Handshake(self.secret, accepting=False)
        link = Link(
            next(self._ids),
            Role.AUTHENTICATING,
            container=container,
            handshake=handshake,
            then=then,
        )
        return link, [Reply(link, handshake.hello())]

    def peer_connected(self, container: int) -> tuple[Link, list[Action]]:
        """Our connection to a peer is up."""
        pending = self._outbound(Role.PEER_OUT, container)
        if pending is not None:
            return pending
        link = Link(next(self._ids), Role.PEER_OUT, container=container)
        return link, self._peer_ready(link)

    def _peer_ready(self, link: Link) -> list[Action]:
        assert link.container is not None
        hello = m.HelloStmgr(self.topology, self.container, self.epoch)
        actions: list[Action] = [Reply(link, m.encode(hello))]
        for notice in self.backpressure.current_notices():
            actions.append(Reply(link, self._notice(notice)))
        actions.append(Attach(peer_outlet(link.container), link))
        return actions

    def tmaster_connected(self) -> tuple[Link, list[Action]]:
        """Our connection to the topology master is up: register, report every status."""
        pending = self._outbound(Role.TMASTER, None)
        if pending is not None:
            return pending
        link = Link(next(self._ids), Role.TMASTER)
        return link, self._tmaster_ready(link)

    def _tmaster_ready(self, link: Link) -> list[Action]:
        self.tmaster = link
        register = m.RegisterStmgr(
            self.topology,
            self.container,
            self.host,
            self.port,
            self.pid,
            self.restarts,
            sorted(self.routing.local_tasks),
            self.epoch,
        )
        actions: list[Action] = [Reply(link, m.encode(register))]
        for instance in self._instances.values():
            if instance.status is not None:
                actions.append(Reply(link, m.encode(instance.status)))
        return actions

    def closed(self, link: Link, now: float) -> list[Action]:
        """A connection ended (either side closed it)."""
        actions: list[Action] = []
        if link.inbound:
            link.inbound = False
            self.inbound -= 1
        if link.role is Role.INSTANCE and link.task is not None:
            instance = self._instances[link.task]
            if instance.link is link:
                instance.link = None
                instance.attached = False
                actions.append(Detach(task_outlet(link.task), link))
                old = instance.status
                if old is not None:
                    down = m.InstanceStatus(
                        link.task, old.component, "down", old.pid, old.restarts, old.error
                    )
                    actions += self._report(down)
                log.warning("instance task %d disconnected", link.task)
        elif link.role is Role.PEER and link.container is not None:
            self._ahead.pop(link.id, None)
            self.backpressure.peer_gone(link.container, now)
            actions += self._apply_pauses()
        elif link.role is Role.PEER_OUT and link.container is not None:
            actions.append(Detach(peer_outlet(link.container), link))
        elif link is self.tmaster:
            self.tmaster = None
        return actions

    # -- frames --

    def received(self, link: Link, frames: list[Frame], now: float) -> list[Action]:
        """Handle frames from ``link``, in order; a frame it may not send closes it
        (and the frames after it in this read are not looked at)."""
        if self.stateful:
            return self._received_stateful(link, frames, now)
        actions: list[Action] = []
        outlet_of = self._outlet_of
        for frame in frames:
            if type(frame) is DataFrame:
                if not self._may_send(link, DataFrame, frame.src_task, actions):
                    return actions
                outlet = outlet_of.get(frame.dst_task)
                if outlet is None:
                    self._unroutable(frame.dst_task)
                else:
                    actions.append(Forward(outlet, frame.frame, frame.tuples))
            elif type(frame) is AckFrame:
                if not self._may_send(link, AckFrame, frame.src_task, actions):
                    return actions
                if not self._route_ack(link, frame, now, actions):
                    return actions
            elif type(frame) is MarkerFrame:
                if not self._may_send(link, MarkerFrame, frame.src_task, actions):
                    return actions  # not an EFFECTIVELY_ONCE topology: ignored
            elif not self._control_frame(link, frame, now, actions):
                return actions
        return actions

    def _received_stateful(self, link: Link, frames: list[Frame], now: float) -> list[Action]:
        """`received` at EFFECTIVELY_ONCE: what an instance or peer sends counts only
        in the stream manager's epoch, and frames for a local bolt may be held back
        while its inputs align."""
        actions: list[Action] = []
        outlet_of = self._outlet_of
        alignment = self.alignment
        local = self._instances
        for frame in frames:
            kind = type(frame)
            if kind is DataFrame or kind is MarkerFrame or kind is AckFrame:
                src = frame.src_task  # type: ignore[union-attr]
                if not self._may_send(link, kind, src, actions):
                    return actions
                if link.epoch != self.epoch:
                    self.dropped_of_old_epoch += 1
                    continue
                dst = frame.dst_task  # type: ignore[union-attr]
                if kind is AckFrame:
                    if not self._route_ack(link, frame, now, actions):  # type: ignore[arg-type]
                        return actions
                    continue
                if dst not in local:
                    outlet = outlet_of.get(dst)
                    if outlet is None:
                        self._unroutable(dst)
                    else:
                        actions.append(Forward(outlet, frame.frame))  # type: ignore[union-attr]
                elif kind is MarkerFrame:
                    checkpoint = frame.checkpoint  # type: ignore[union-attr]
                    released = alignment.marker(dst, src, checkpoint, now)
                    self._release(dst, released, actions)
                elif alignment.holds(dst, src):
                    tuples = frame.tuples  # type: ignore[union-attr]
                    released = alignment.hold(dst, src, frame.frame, tuples, now)  # type: ignore[union-attr]
                    self._release(dst, released, actions)
                else:
                    actions.append(Forward(task_outlet(dst), frame.frame, frame.tuples))  # type: ignore[union-attr]
            elif not self._control_frame(link, frame, now, actions):
                return actions
        return actions

    def _release(self, task: int, released: Released, actions: list[Action]) -> None:
        """What the alignment gives a local task: its marker first, then what it held."""
        outlet = task_outlet(task)
        if released.marker is not None:
            actions.append(Forward(outlet, encode_marker(task, 0, released.marker)))
        for frame, tuples in released.frames:
            actions.append(Forward(outlet, frame, tuples))
        if released.declined is not None:
            log.warning("checkpoint %d declined: %s", released.declined, released.reason)
            failed = m.CheckpointFailed(
                released.declined, f"stmgr {self.container}", released.reason
            )
            actions += self._to_tmaster(failed)

    def _to_tmaster(self, msg: m.Message) -> list[Action]:
        return [] if self.tmaster is None else [Reply(self.tmaster, m.encode(msg))]

    def _control_frame(self, link: Link, frame: Frame, now: float, actions: list[Action]) -> bool:
        """A CONTROL frame (or a kind the link may not send); False if it closed the link."""
        if not isinstance(frame, ControlFrame):
            actions.append(self._violation(link, f"{type(frame).__name__} is not allowed"))
            return False
        try:
            msg = m.decode(frame.payload)
        except RemoteProtocolError as exc:
            actions.append(self._violation(link, str(exc)))
            return False
        if type(msg) not in ALLOWED[link.role]:
            actions.append(self._violation(link, f"{msg.TYPE} is not allowed"))
            return False
        if self.stateful and type(msg) in _OF_AN_EPOCH and link.epoch != self.epoch:
            self.dropped_of_old_epoch += 1
            return True
        return self._on_control(link, msg, now, actions)

    def _may_send(self, link: Link, kind: type, src_task: int, actions: list[Action]) -> bool:
        if kind not in ALLOWED[link.role]:
            actions.append(self._violation(link, f"{kind.__name__} is not allowed"))
            return False
        if link.role is Role.INSTANCE and src_task != link.task:
            actions.append(self._violation(link, f"a frame from task {src_task}"))
            return False
        if link.role is Role.PEER and self.routing.task_container.get(src_task) != link.container:
            actions.append(self._violation(link, f"a frame from task {src_task}"))
            return False
        return True

    def _violation(self, link: Link, what: str) -> Close:
        self.protocol_errors += 1
        return Close(link, f"protocol error: {what} on a {link.role.value} link")

    def _unroutable(self, task: int) -> None:
        self.unroutable_frames += 1
        if self.unroutable_frames <= 5 or self.unroutable_frames % 1000 == 0:
            log.error(
                "dropping frame for unknown task %d (%d so far)", task, self.unroutable_frames
            )

    def _route_ack(self, link: Link, frame: AckFrame, now: float, actions: list[Action]) -> bool:
        """Feed or route an ACK frame; False if it closed the link."""
        spout_task = frame.dst_task
        spout = self.routing.task_component.get(spout_task)
        sender = self.routing.task_component.get(frame.src_task)
        if spout is not None and not (
            frame.src_task == spout_task or sender in self._reaches.get(spout, ())
        ):
            # that task never receives a tuple of this spout's trees: it cannot ack one
            actions.append(
                self._violation(link, f"an ack from task {frame.src_task} for task {spout_task}")
            )
            return False
        if spout_task in self._instances:
            verdict = self.tracker.apply_body(spout_task, frame.body, now)
            if verdict is not None:
                actions.append(Send(task_outlet(spout_task), encode_ack(spout_task, 0, verdict)))
            return True
        outlet = self._outlet_of.get(spout_task)
        if outlet is None:
            self._unroutable(spout_task)
        else:
            actions.append(Forward(outlet, frame.frame))
        return True

    def _on_control(self, link: Link, msg: m.Message, now: float, actions: list[Action]) -> bool:
        """Handle one allowed control message; False if it closed the link."""
        if isinstance(msg, (m.AuthHello, m.AuthProof)):
            return self._authenticate(link, msg, actions)
        if isinstance(msg, m.RegisterInstance):
            return self._register_instance(link, msg, actions)
        if isinstance(msg, m.HelloStmgr):
            if msg.topology != self.topology or msg.container not in self.routing.peers:
                actions.append(
                    Close(link, f"peer hello from {msg.topology!r} container {msg.container}")
                )
                return False
            link.role = Role.PEER
            link.container = msg.container
            link.epoch = msg.epoch
            log.info("peer stmgr %d connected", msg.container)
            if self.stateful and msg.epoch > self.epoch:
                actions.append(self._wait_for_epoch(link))
        elif isinstance(msg, m.InstanceStatus):
            if msg.task_id != link.task:
                actions.append(self._violation(link, f"a status of task {msg.task_id}"))
                return False
            actions += self._report(msg)
        elif isinstance(msg, m.BackpressureNotice):
            if msg.container != link.container:
                actions.append(self._violation(link, f"a notice of container {msg.container}"))
                return False
            notice = Notice(msg.component, msg.start)
            log.info("backpressure notice from stmgr %d: %s", msg.container, notice)
            self.backpressure.remote_notice(msg.container, notice, now)
            actions += self._apply_pauses()
        elif isinstance(msg, m.PhysicalPlanUpdate):
            actions += self._plan_received(msg)
        elif isinstance(msg, m.Rejected):
            log.error("tmaster rejected this stmgr: %s", msg.reason)
        elif not self.stateful:
            log.warning("ignoring %s: this topology is not EFFECTIVELY_ONCE", msg.TYPE)
        else:
            return self._on_stateful(link, msg, now, actions)
        return True

    # -- EFFECTIVELY_ONCE --

    def _on_stateful(self, link: Link, msg: m.Message, now: float, actions: list[Action]) -> bool:
        """A checkpoint or restore message (docs/decisions/0029-effectively-once.md)."""
        if isinstance(msg, (m.StateStored, m.CheckpointFailed)):
            if isinstance(msg, m.StateStored) and msg.task_id != link.task:
                actions.append(self._violation(link, f"a state of task {msg.task_id}"))
                return False
            actions += self._to_tmaster(msg)
        elif isinstance(msg, m.Restored):
            if msg.task_id != link.task:
                actions.append(self._violation(link, f"a restore of task {msg.task_id}"))
                return False
            actions += self._instance_restored(link, msg)
        elif isinstance(msg, m.EpochStart):
            link.epoch = msg.epoch
            if msg.epoch > self.epoch:
                actions.append(self._wait_for_epoch(link))
            elif self._ahead.pop(link.id, None) is not None:
                actions.append(Resume(link))
        elif isinstance(msg, m.StartCheckpoint):
            actions += self._start_checkpoint(msg)
        elif isinstance(msg, m.CheckpointComplete):
            self.completed, self.completed_at = msg, now
            frame = m.encode(msg)
            for task, instance in self._instances.items():
                if instance.attached:
                    actions.append(Send(task_outlet(task), frame))
        elif isinstance(msg, m.Restore):
            actions += self._restore(msg)
        elif isinstance(msg, m.Resume) and msg.epoch == self.epoch:
            frame = m.encode(msg)
            for task in self._spouts():
                actions.append(Send(task_outlet(task), frame))
        return True

    def _wait_for_epoch(self, link: Link) -> Pause:
        """A peer is ahead: what it sends belongs to an epoch this stream manager
        enters only when the tmaster's Restore arrives; stop reading it until then."""
        self._ahead[link.id] = link
        return Pause(link)

    def _caught_up(self) -> list[Resume]:
        """Read again the peers that were ahead and whose epoch this stream manager
        has now entered."""
        caught_up = [p for p in self._ahead.values() if p.epoch <= self.epoch]
        for peer in caught_up:
            del self._ahead[peer.id]
        return [Resume(peer) for peer in caught_up]

    def _start_checkpoint(self, msg: m.StartCheckpoint) -> list[Action]:
        """Pass ``msg`` to the local spouts; decline it at once if one of them cannot
        take its part (away, or not in this epoch yet) rather than let it time out."""
        if self._restoring is not None:
            return []  # the tmaster abandons it: a restore is under way
        ready = self._spouts()
        missing = sorted(
            task
            for task in self._instances
            if task not in ready and self.routing.task_component[task] in self.backpressure.spouts
        )
        if missing:
            reason = f"spout task(s) {missing} not connected in epoch {self.epoch}"
            self.declined_at_start += 1
            log.warning("checkpoint %d declined: %s", msg.checkpoint, reason)
            return self._to_tmaster(
                m.CheckpointFailed(msg.checkpoint, f"stmgr {self.container}", reason)
            )
        frame = m.encode(msg)
        return [Send(task_outlet(task), frame) for task in ready]

    def _spouts(self) -> list[int]:
        """Local spout tasks whose instance is attached and in the current epoch."""
        spouts = self.backpressure.spouts
        return [
            task
            for task, instance in self._instances.items()
            if instance.attached
            and instance.link is not None
            and instance.link.epoch == self.epoch
            and self.routing.task_component[task] in spouts
        ]

    def _restore(self, msg: m.Restore) -> list[Action]:
        """Enter ``msg.epoch``: drop what is held or queued, restore every local
        instance, tell every peer; answer the tmaster when every instance has."""
        log.info("restoring checkpoint %d: epoch %d", msg.checkpoint, msg.epoch)
        self.epoch = msg.epoch
        self.alignment.reset()
        self._restoring = set(self._instances)
        self._restore_failures = []
        if self.plan is not None:
            self.plan = dataclasses.replace(
                self.plan,
                stateful={"epoch": msg.epoch, "restore": msg.checkpoint, "layout": msg.layout},
            )
        actions: list[Action] = [Purge(name) for name in self.outlets()]
        for instance in self._instances.values():
            if instance.link is not None:
                # what is queued to and from it is of the old epoch: drop the connection
                # rather than have it work through a backlog first; it connects again,
                # says which epoch it is in, and is told to restore (_instance_restored)
                actions.append(Close(instance.link, f"restore: epoch {msg.epoch}", abort=True))
        start = m.encode(m.EpochStart(msg.epoch))
        actions += [Send(peer_outlet(c), start) for c in self.routing.peers]
        actions += self._caught_up()
        for task in list(self._restoring):
            link = self._instances[task].link
            if link is not None and link.epoch == msg.epoch:
                self._restoring.discard(task)  # it built from this epoch's plan already
        return actions + self._maybe_restored()

    def _instance_restored(self, link: Link, msg: m.Restored) -> list[Action]:
        """An instance is in ``msg.epoch`` (it says so after a restore, after its
        first build, and whenever it connects again)."""
        outlet = task_outlet(msg.task_id)
        if msg.epoch != self.epoch or msg.epoch < link.min_epoch:
            if msg.epoch < self.epoch and self.plan is not None:
                # it was away when this epoch began: it restores now
                restore = int(self.plan.stateful.get("restore", -1))
                layout = self.plan.stateful.get("layout") or {}
                return [Send(outlet, m.encode(m.Restore(restore, self.epoch, layout)))]
            return []  # a replaced task's first build: the tmaster's restore follows
        if msg.error:
            log.error("task %d could not restore its state: %s", msg.task_id, msg.error)
            self._restore_failures.append([msg.task_id, msg.error])
        else:
            link.epoch = msg.epoch
        if self._restoring is not None:
            self._restoring.discard(msg.task_id)
            return self._maybe_restored()
        if not msg.error and self.routing.task_component[msg.task_id] in self.backpressure.spouts:
            return [Send(outlet, m.encode(m.Resume(self.epoch)))]  # restored on its own
        return []

    def _maybe_restored(self) -> list[Action]:
        if self._restoring is None or self._restoring:
            return []
        self._restoring = None
        done = m.RestoreDone(self.epoch, self.container, self._restore_failures)
        log.info("every local task restored: epoch %d", self.epoch)
        return self._to_tmaster(done)

    def _authenticate(self, link: Link, msg: m.Message, actions: list[Action]) -> bool:
        assert link.handshake is not None
        try:
            replies = link.handshake.receive(msg)
        except AuthenticationFailed as exc:
            self.failed_handshakes += 1
            actions.append(Close(link, str(exc)))
            return False
        actions += [Reply(link, frame) for frame in replies]
        if link.handshake.done:
            link.handshake = None
            if link.role is Role.UNAUTHENTICATED:
                link.role = Role.PENDING
            else:
                assert link.then is not None
                link.role = link.then
                if link.role is Role.PEER_OUT:
                    actions += self._peer_ready(link)
                else:
                    actions += self._tmaster_ready(link)
        return True

    def _register_instance(
        self, link: Link, msg: m.RegisterInstance, actions: list[Action]
    ) -> bool:
        instance = self._instances.get(msg.task_id)
        if msg.topology != self.topology or instance is None:
            log.error("rejecting instance registration %s", msg)
            reason = (
                f"task {msg.task_id} of {msg.topology!r} does not run in container "
                f"{self.container} of {self.topology!r}"
            )
            actions += [Reply(link, m.encode(m.Rejected(reason))), Close(link, reason)]
            return False
        if instance.link is not None:
            # never take over a live link: whoever registers second is refused
            reason = f"task {msg.task_id} is connected already"
            log.warning("refusing a second registration of task %d: it is connected", msg.task_id)
            actions += [Reply(link, m.encode(m.Rejected(reason))), Close(link, reason)]
            return False
        log.info("instance task %d (%s) registered, pid %d", msg.task_id, msg.component, msg.pid)
        link.role = Role.INSTANCE
        link.task = msg.task_id
        link.pid = msg.pid
        old = instance.status
        if old is not None and old.pid != msg.pid:
            self.tracker.drop_task(msg.task_id)  # a new process: it knows none of those trees
            # EFFECTIVELY_ONCE: a replaced task's state is gone; the tmaster rolls every
            # task back, and until then nothing it sends counts (during a restore,
            # the plan it builds from is the restore's)
            link.min_epoch = self.epoch if self._restoring is not None else self.epoch + 1
        instance.link = link
        instance.attached = False
        if self.plan is not None:
            actions += self._attach(msg.task_id, instance)
        component = self.routing.task_component[msg.task_id]
        if component in self._paused:
            actions.append(Pause(link))
        # the last error stays with the task: it may not have reached the tmaster yet
        error = old.error if old is not None else ""
        actions += self._report(
            m.InstanceStatus(msg.task_id, msg.component, "starting", msg.pid, msg.restarts, error)
        )
        return True

    def _attach(self, task: int, instance: _Instance) -> list[Action]:
        """Plan first, then the outlet (and its queued tuples), then the throttle."""
        assert self.plan is not None and instance.link is not None
        link = instance.link
        instance.attached = True
        outlet = task_outlet(task)
        actions: list[Action] = [
            Reply(link, m.encode(m.PhysicalPlanUpdate(self.plan.to_dict()))),
            Attach(outlet, link),
        ]
        component = self.routing.task_component[task]
        if component in self._paused and component in self.backpressure.spouts:
            actions.append(Send(outlet, m.encode(m.SpoutThrottle(True))))
        return actions

    def _plan_received(self, msg: m.PhysicalPlanUpdate) -> list[Action]:
        plan = PhysicalPlan.from_dict(msg.plan)
        if self.stateful and self.epoch < 0:
            # a stream manager that (re)starts joins the epoch the plan names; the
            # tmaster rolls back if it was replaced
            self.epoch = int(plan.stateful.get("epoch", 0))
        self.plan = plan
        log.info("physical plan received: state %s, %d stmgrs", plan.state, len(plan.stmgrs))
        # a peer that said hello before the plan came seemed ahead of epoch -1
        actions: list[Action] = [*self._caught_up()]
        for container, location in plan.stmgrs.items():
            if container == self.container or container not in self.routing.peers:
                continue
            address = (location.host, location.port)
            if self._peer_addresses.get(container) != address:
                self._peer_addresses[container] = address
                actions.append(ConnectPeer(container, *address))
        frame = m.encode(msg)
        for task, instance in self._instances.items():
            if instance.link is None:
                continue
            if instance.attached:
                actions.append(Send(task_outlet(task), frame))
            else:
                actions += self._attach(task, instance)
        return actions

    def _report(self, status: m.InstanceStatus) -> list[Action]:
        self._instances[status.task_id].status = status
        if self.tmaster is None:
            return []
        return [Reply(self.tmaster, m.encode(status))]

    # -- backpressure --

    def congested(self, outlet: str, now: float) -> list[Action]:
        """A local task's outlet went above its high watermark."""
        task = self._task_of(outlet)
        if task is None or task in self.backpressure.congested:
            return []
        log.info("backpressure: task %d congested", task)
        notices = self.backpressure.task_congested(task, now)
        return [*self._send_notices(notices), *self._apply_pauses(), WatchRelief(outlet)]

    def relieved(self, outlet: str, now: float) -> list[Action]:
        """A congested outlet drained below its low watermark."""
        task = self._task_of(outlet)
        if task is None:
            return []
        log.info("backpressure: task %d relieved", task)
        notices = self.backpressure.task_relieved(task, now)
        return [*self._send_notices(notices), *self._apply_pauses()]

    def _task_of(self, outlet: str) -> int | None:
        kind, _, number = outlet.partition(" ")
        if kind != "task":
            return None
        task = int(number)
        return task if task in self._instances else None

    def _notice(self, notice: Notice) -> bytes:
        return m.encode(m.BackpressureNotice(self.container, notice.component, notice.start))

    def _send_notices(self, notices: list[Notice]) -> list[Action]:
        return [
            Send(peer_outlet(c), self._notice(notice))
            for notice in notices
            for c in self.routing.peers
        ]

    def _apply_pauses(self) -> list[Action]:
        """Stop reading paused components' instances; tell paused spouts to stop
        calling ``next_tuple`` (their buffers alone could take long to fill)."""
        paused = self.backpressure.paused
        if paused == self._paused:
            return []
        started, stopped = paused - self._paused, self._paused - paused
        self._paused = paused
        actions: list[Action] = []
        for component in sorted(started):
            log.info("backpressure: pausing %s", component)
        for component in sorted(stopped):
            log.info("backpressure: resuming %s", component)
        spouts = self.backpressure.spouts
        for task, instance in self._instances.items():
            component = self.routing.task_component[task]
            if instance.link is None or not (component in started or component in stopped):
                continue
            pausing = component in started
            actions.append(Pause(instance.link) if pausing else Resume(instance.link))
            if component in spouts and instance.attached:
                actions.append(Send(task_outlet(task), m.encode(m.SpoutThrottle(pausing))))
        return actions

    # -- time --

    def tick(self, now: float) -> list[Action]:
        """Heartbeats to the tmaster and tree timeouts that are due."""
        actions: list[Action] = []
        if self.tmaster is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_interval
            actions.append(
                Reply(self.tmaster, m.encode(m.Heartbeat(self.container, self.stats(now))))
            )
        if self.tracker.period is not None and now >= self._next_expiry:
            self._next_expiry = now + min(self.tracker.period / 4, 1.0)
            for spout_task, verdict in self.tracker.expire_bodies(now):
                actions.append(Send(task_outlet(spout_task), encode_ack(spout_task, 0, verdict)))
        return actions

    def next_tick(self) -> float:
        due = self._next_heartbeat if self.tmaster is not None else float("inf")
        if self.tracker.period is not None:
            due = min(due, self._next_expiry)
        return due

    # -- what others read --

    def stats(self, now: float) -> dict[str, Any]:
        """What ``status`` shows of this stream manager (sent with each heartbeat;
        only what changes under backpressure, as a change makes the tmaster persist
        the plan; queues and trees are in the metrics)."""
        bp = self.backpressure
        totals = bp.totals(now)
        return {
            "backpressure": {
                "strategy": bp.strategy.value,
                "culprits": sorted(bp.local_culprits()),
                "paused": sorted(bp.paused),
                "culprit_seconds": {k: round(v, 3) for k, v in totals["culprit"].items()},
                "paused_seconds": {k: round(v, 3) for k, v in totals["paused"].items()},
            },
        }

    def collect_metrics(self, outlets: list[OutletStatistics], now: float) -> list[Any]:
        """This stream manager's samples for its metrics manager (wire/metric_names.py)."""
        out: list[Any] = []
        for stats in outlets:
            labels = {"destination": stats.name}
            out += [
                [names.STMGR_TUPLES, "counter", labels, stats.written_tuples],
                [names.STMGR_FRAMES, "counter", labels, stats.written_frames],
                [names.STMGR_BYTES, "counter", labels, stats.written_bytes],
                [names.STMGR_QUEUE, "gauge", labels, stats.buffered_bytes],
                [names.STMGR_QUEUE_CAPACITY, "gauge", labels, stats.hard_bytes],
            ]
        bp = self.backpressure
        totals = bp.totals(now)
        for component, seconds in totals["paused"].items():
            out.append([names.BACKPRESSURE, "counter", {"component": component}, seconds])
        culprits = bp.local_culprits()
        for component, seconds in totals["culprit"].items():
            labels = {"component": component}
            out.append([names.BACKPRESSURE_CULPRIT, "counter", labels, seconds])
            out.append([names.BACKPRESSURE_ACTIVE, "gauge", labels, int(component in culprits)])
        out.append([names.XOR_TREES, "gauge", {}, len(self.tracker)])
        for task, n in self.tracker.timed_out_by_task.items():
            labels = {"component": self.routing.task_component[task], "instance_id": str(task)}
            out.append([names.TIMED_OUT, "counter", labels, n])
        if self.stateful:
            a = self.alignment
            out += [
                [names.ALIGNMENT_SECONDS, "counter", {}, a.aligned_seconds],
                [names.ALIGNMENT_LAST_SECONDS, "gauge", {}, a.last_aligned_seconds],
                [names.ALIGNMENT_HELD, "gauge", {}, a.held_bytes],
                [names.CHECKPOINTS_DECLINED, "counter", {}, a.declined + self.declined_at_start],
                [names.OLD_EPOCH_DROPPED, "counter", {}, self.dropped_of_old_epoch],
                [names.EPOCH, "gauge", {}, self.epoch],
            ]
            done = self.completed
            if done is not None:
                out += [
                    [names.CHECKPOINT_LATEST, "gauge", {}, done.checkpoint],
                    [names.CHECKPOINT_AGE, "gauge", {}, now - self.completed_at],
                    [names.CHECKPOINT_DURATION, "gauge", {}, done.duration],
                    [names.CHECKPOINT_SIZE, "gauge", {}, done.size],
                    [names.CHECKPOINTS_FAILED, "counter", {}, done.failed],
                ]
        return out


def _downstream(components: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Per component, every component a tuple of its trees can reach (through
    ``inputs``, transitively)."""
    consumers: dict[str, set[str]] = {name: set() for name in components}
    for name, spec in components.items():
        for source in spec.get("inputs", []):
            consumers.setdefault(source, set()).add(name)
    reaches: dict[str, frozenset[str]] = {}
    for start in components:
        seen: set[str] = set()
        todo = list(consumers.get(start, ()))
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo += consumers.get(name, ())
        reaches[start] = frozenset(seen)
    return reaches
