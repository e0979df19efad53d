"""An instance's lifecycle, and what its stream manager may send it in each phase.

Theory of operation
-------------------
An instance process has one link, to its container's stream manager. Its
phase combines the link (up or down) with the task (built or not)::

    CONNECTING --connected--> AWAITING_PLAN --started--> RUNNING
         ^                     |        \\                |    ^
         +--------lost---------+         failed          lost  connected
                                          v               v    |
                                        FAILED          RECONNECTING

With authentication on, every connection first runs the handshake
(`wire/handshake.py`): CONNECTING --connected--> AUTHENTICATING
--authenticated--> AWAITING_PLAN, and RECONNECTING --connected-->
REAUTHENTICATING --authenticated--> RUNNING; in those two phases the stream
manager may send nothing but the handshake's messages, and the
registration goes out only once the stream manager has proved it knows
the topology's secret.

The task is built, and its component's ``initialize`` runs, when the first
physical plan arrives; after that the component lives as long as the
process: a lost link is re-established and registered again, nothing is
rebuilt. ``initialize`` raising is FAILED, and the process exits (its
executor restarts it).

`ALLOWED` is the protocol as data: which frames and control messages the
stream manager may send, by phase and by kind of task. Anything else is a
`RemoteProtocolError`: the runner closes the link (logged) and connects again.
The stream manager sends the plan before any tuple (a DATA frame before the
task exists breaks the protocol); data goes to bolts only, verdicts (ACK
frames) to spouts only; at EFFECTIVELY_ONCE, checkpoint markers to bolts and
checkpoint starts to spouts.
"""

from __future__ import annotations

import enum

from heronpy_lite.errors import LocalProtocolError, RemoteProtocolError
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import AckFrame, DataFrame, MarkerFrame


class Phase(enum.Enum):
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    AWAITING_PLAN = "awaiting the physical plan"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    REAUTHENTICATING = "authenticating again"
    FAILED = "failed"


class Event(enum.Enum):
    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"
    LOST = "lost"
    STARTED = "started"
    START_FAILED = "start failed"


_TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    (Phase.CONNECTING, Event.CONNECTED): Phase.AWAITING_PLAN,
    (Phase.AWAITING_PLAN, Event.LOST): Phase.CONNECTING,
    (Phase.AWAITING_PLAN, Event.STARTED): Phase.RUNNING,
    (Phase.AWAITING_PLAN, Event.START_FAILED): Phase.FAILED,
    (Phase.RUNNING, Event.LOST): Phase.RECONNECTING,
    (Phase.RECONNECTING, Event.CONNECTED): Phase.RUNNING,
}

#: with authentication: the handshake comes between connecting and registering
_AUTHENTICATED_TRANSITIONS: dict[tuple[Phase, Event], Phase] = {
    **_TRANSITIONS,
    (Phase.CONNECTING, Event.CONNECTED): Phase.AUTHENTICATING,
    (Phase.AUTHENTICATING, Event.AUTHENTICATED): Phase.AWAITING_PLAN,
    (Phase.AUTHENTICATING, Event.LOST): Phase.CONNECTING,
    (Phase.RECONNECTING, Event.CONNECTED): Phase.REAUTHENTICATING,
    (Phase.REAUTHENTICATING, Event.AUTHENTICATED): Phase.RUNNING,
    (Phase.REAUTHENTICATING, Event.LOST): Phase.RECONNECTING,
}

_CONTROL = frozenset({m.PhysicalPlanUpdate, m.Rejected})
#: EFFECTIVELY_ONCE, to every task (ignored elsewhere)
_STATEFUL = frozenset({m.Restore, m.CheckpointComplete})
_HANDSHAKE = frozenset({m.AuthHello, m.AuthProof})

#: (phase, is a spout) -> what the stream manager may send: frame classes, and
#: the control message classes inside CONTROL frames
ALLOWED: dict[tuple[Phase, bool], frozenset[type]] = {
    (Phase.AUTHENTICATING, True): _HANDSHAKE,
    (Phase.AUTHENTICATING, False): _HANDSHAKE,
    (Phase.REAUTHENTICATING, True): _HANDSHAKE,
    (Phase.REAUTHENTICATING, False): _HANDSHAKE,
    (Phase.AWAITING_PLAN, True): _CONTROL | {m.SpoutThrottle},
    (Phase.AWAITING_PLAN, False): _CONTROL,
    (Phase.RUNNING, True): _CONTROL
    | _STATEFUL
    | {m.SpoutThrottle, AckFrame, m.StartCheckpoint, m.Resume},
    (Phase.RUNNING, False): _CONTROL | _STATEFUL | {DataFrame, MarkerFrame},
}


class Lifecycle:
    """The phase of one instance; `check` applies `ALLOWED`."""

    def __init__(self, is_spout: bool, authenticated: bool = False) -> None:
        self.phase = Phase.CONNECTING
        self.is_spout = is_spout
        self._transitions = _AUTHENTICATED_TRANSITIONS if authenticated else _TRANSITIONS

    def advance(self, event: Event) -> Phase:
        target = self._transitions.get((self.phase, event))
        if target is None:
            raise LocalProtocolError(f"instance cannot go from {self.phase.value} on {event.value}")
        self.phase = target
        return target

    @property
    def built(self) -> bool:
        """Whether the task (and its component) exists."""
        return self.phase in (Phase.RUNNING, Phase.RECONNECTING, Phase.REAUTHENTICATING)

    @property
    def authenticating(self) -> bool:
        return self.phase in (Phase.AUTHENTICATING, Phase.REAUTHENTICATING)

    def check(self, kind: type) -> None:
        """`RemoteProtocolError` unless the stream manager may send ``kind`` now."""
        allowed = ALLOWED.get((self.phase, self.is_spout), frozenset())
        if kind not in allowed:
            what = "spout" if self.is_spout else "bolt"
            raise RemoteProtocolError(
                f"{getattr(kind, 'TYPE', '') or kind.__name__} is not allowed for a {what} "
                f"instance that is {self.phase.value}"
            )
