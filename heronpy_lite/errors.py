"""Every exception heronpy_lite raises on purpose.

The tree::

    HeronpyLiteError
    ├── ConfigError               a config key is unknown or its value is invalid
    ├── TopologyError             the topology definition is invalid (validation);
    │   │                         also a ValueError, as heronpy's errors for these are
    │   └── TopologyLoadError     the user's file cannot be imported, or ATTR is missing
    ├── EmitError                 an emit() that cannot be honoured: unknown stream,
    │                             wrong arity, bad direct task (user code, at run time)
    ├── StateManagerError         the state manager cannot be read or written
    │   ├── CorruptStateError     a node holds something that is not a JSON object
    │   ├── TopologyExistsError   submit of a name that is already running
    │   └── TopologyNotFoundError a command names a topology that does not exist
    ├── LeadershipLost            another tmaster holds tmasters/<name> now
    ├── ProtocolError             bytes on a connection that break the wire protocol
    │   ├── RemoteProtocolError   ... sent by the peer: close that connection, log
    │   │   ├── RegistrationRejected  the peer refused this process's registration
    │   │   └── AuthenticationFailed  the peer does not know the topology's secret
    │   └── LocalProtocolError    ... that we were about to send: a bug of ours
    ├── InvalidTransition         a topology state change that is not allowed (KILLED ->)
    ├── CheckpointError           a checkpoint cannot be taken or read (EFFECTIVELY_ONCE)
    │   ├── StateError            a state key or value is not a msgpack type (names the key)
    │   └── CorruptCheckpoint     a stored state file is missing or damaged
    ├── RegistrationConflict      a registration for a container whose stream manager is alive
    ├── SubmitError               the topology did not come up (launch failed, timeout)
    ├── SchedulerError            the cluster engine (Slurm, Ray) refused or failed a request
    ├── TopologyGone              a running process finds its topology killed or resubmitted
    └── ControlError              a control request to the topology master failed

`cli` turns any of these into one line on stderr and a non-zero exit code.
User-code exceptions (from `process`, `next_tuple`, ...) are not wrapped: the
instance catches them at its boundary, logs and counts them.
"""

from __future__ import annotations


class HeronpyLiteError(Exception):
    """Base class of every heronpy_lite error."""


class ConfigError(HeronpyLiteError):
    """A config key is unknown or a value has the wrong type or range."""


class TopologyError(HeronpyLiteError, ValueError):
    """The topology definition is invalid; nothing was started. A ValueError, as
    heronpy raises for an invalid topology, so code written against heronpy that
    catches those still does."""


class TopologyLoadError(TopologyError):
    """The topology file could not be imported or does not define ATTR."""


class EmitError(HeronpyLiteError, ValueError):
    """An emit that cannot be honoured: undeclared stream, arity, direct task."""


class StateManagerError(HeronpyLiteError):
    """The state manager could not be read or written."""


class CorruptStateError(StateManagerError):
    """A state node holds something other than a JSON object (``kill`` still
    removes it)."""


class TopologyExistsError(StateManagerError):
    """A topology with this name already exists."""


class TopologyNotFoundError(StateManagerError):
    """No topology with this name exists."""


class ProtocolError(HeronpyLiteError):
    """Bytes that violate the wire protocol."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that violate the wire protocol."""


class RegistrationRejected(RemoteProtocolError):
    """The stream manager (or tmaster) refused this process's registration."""


class AuthenticationFailed(RemoteProtocolError):
    """The peer failed the handshake: it does not know the topology's secret, or
    broke the handshake's order."""


class LocalProtocolError(ProtocolError):
    """We were about to send something that violates the wire protocol."""


class LeadershipLost(HeronpyLiteError):
    """Another tmaster holds ``tmasters/<name>`` now."""


class CheckpointError(HeronpyLiteError):
    """A checkpoint cannot be taken or read."""


class StateError(CheckpointError, TypeError):
    """A state key or value is not a msgpack type; the message names the key."""


class CorruptCheckpoint(CheckpointError):
    """A stored state file is missing, incomplete or fails its checksum."""


class InvalidTransition(HeronpyLiteError):
    """A topology state change that is not allowed (anything from KILLED)."""


class SubmitError(HeronpyLiteError):
    """The topology did not come up."""


class ControlError(HeronpyLiteError):
    """A control request (activate, deactivate, ...) failed."""


class TopologyGone(HeronpyLiteError):
    """A scheduler or executor finds its topology's record gone (killed) or a newer
    submit's: it stops what it runs and exits, so nothing is orphaned."""


class RegistrationConflict(HeronpyLiteError):
    """A stream manager registration for a container whose registered stream manager
    is connected and heartbeating: it is refused, never replaces the live one."""


class SchedulerError(HeronpyLiteError):
    """The cluster engine behind a scheduler (Slurm, Ray) refused or failed a request."""
