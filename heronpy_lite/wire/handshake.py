"""The authentication handshake every link starts with, sans-IO.

Theory of operation
-------------------
Both ends know the topology's secret (made at submit, handed to the
containers by the scheduler, kept by the CLI; never sent). On connect,
each end sends `AuthHello` with a fresh 16-byte nonce. On the other's
hello, each sends `AuthProof`: ``HMAC-SHA256(secret, label | peer nonce |
own nonce)``, where the label says which end it is (``accept`` for the end
that accepted the connection, ``connect`` for the one that opened it), so a
proof can never be reflected back as the other end's. Each checks the
other's proof with ``hmac.compare_digest``; the link is authenticated once
both proofs are in (one round trip). Nonces are fresh per connection, so a
recorded proof is worth nothing on another connection::

    connect end                      accept end
      AuthHello(nc)  ────────────►
                     ◄────────────   AuthHello(na)
      AuthProof(mac_c(na, nc)) ──►   checks it
                     ◄────────────   AuthProof(mac_a(nc, na))
      checks it

Anything else before the handshake is done, a second hello, or a proof
that does not verify raises `AuthenticationFailed`: the runner closes that
connection with one log line, and nothing else is disturbed.

What this does not do: protect the bytes after the handshake. Someone who
can rewrite the TCP stream between two processes can take over an
authenticated connection; TLS (``heron.network.tls.*``) closes that.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets

from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.wire import messages as m

NONCE_BYTES = 16
_CONTEXT = b"heronpy_lite link v1|"


class Stage(enum.Enum):
    GREETED = "greeted"  # our hello sent
    PROVED = "proved"  # their hello in, our proof sent
    DONE = "done"  # their proof verified


def proof(secret: bytes, label: bytes, theirs: bytes, ours: bytes) -> bytes:
    return hmac.new(secret, _CONTEXT + label + b"|" + theirs + ours, hashlib.sha256).digest()


class Handshake:
    """One end of one link's handshake. ``accepting``: this end accepted it."""

    def __init__(self, secret: bytes, *, accepting: bool, nonce: bytes | None = None) -> None:
        if not secret:
            raise ValueError("a handshake needs a secret")
        self._secret = secret
        self._ours = nonce if nonce is not None else secrets.token_bytes(NONCE_BYTES)
        self._theirs = b""
        self._label, self._their_label = (
            (b"accept", b"connect") if accepting else (b"connect", b"accept")
        )
        self.stage = Stage.GREETED

    @property
    def done(self) -> bool:
        return self.stage is Stage.DONE

    def hello(self) -> bytes:
        """The frame to send first."""
        return m.encode(m.AuthHello(self._ours))

    def receive(self, msg: m.Message) -> list[bytes]:
        """Handle a message of the other end; the frames to send back.
        `AuthenticationFailed` if it breaks the handshake."""
        if isinstance(msg, m.AuthHello) and self.stage is Stage.GREETED:
            if len(msg.nonce) != NONCE_BYTES:
                raise AuthenticationFailed("authentication failed: a malformed hello")
            self._theirs = msg.nonce
            self.stage = Stage.PROVED
            mac = proof(self._secret, self._label, self._theirs, self._ours)
            return [m.encode(m.AuthProof(mac))]
        if isinstance(msg, m.AuthProof) and self.stage is Stage.PROVED:
            expected = proof(self._secret, self._their_label, self._ours, self._theirs)
            if not hmac.compare_digest(expected, msg.mac):
                raise AuthenticationFailed("authentication failed: wrong secret")
            self.stage = Stage.DONE
            return []
        raise AuthenticationFailed(
            f"authentication failed: {msg.TYPE} while the handshake is {self.stage.value}"
        )
