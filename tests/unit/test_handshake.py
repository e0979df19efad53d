"""The authentication handshake (wire/handshake.py), both ends in one test, no
sockets: who may talk, and every way to get it wrong."""

from __future__ import annotations

import pytest

from heronpy_lite.errors import AuthenticationFailed
from heronpy_lite.wire import messages as m
from heronpy_lite.wire.frames import ControlFrame, FrameDecoder
from heronpy_lite.wire.handshake import Handshake, Stage

SECRET = b"s" * 32


def decoded(frames: list[bytes]) -> list[m.Message]:
    out = []
    for frame in FrameDecoder().feed(b"".join(frames)):
        assert isinstance(frame, ControlFrame)
        out.append(m.decode(frame.payload))
    return out


def exchange(connect: Handshake, accept: Handshake) -> None:
    """Both hellos cross, both proofs cross."""
    (hello_c,) = decoded([connect.hello()])
    (hello_a,) = decoded([accept.hello()])
    proof_a = decoded(accept.receive(hello_c))
    proof_c = decoded(connect.receive(hello_a))
    for msg in proof_c:
        assert accept.receive(msg) == []
    for msg in proof_a:
        assert connect.receive(msg) == []


def test_two_ends_with_the_secret_authenticate_in_one_round_trip() -> None:
    connect, accept = Handshake(SECRET, accepting=False), Handshake(SECRET, accepting=True)
    exchange(connect, accept)
    assert connect.done and accept.done


def test_a_wrong_secret_fails_on_both_ends() -> None:
    connect, accept = Handshake(b"x" * 32, accepting=False), Handshake(SECRET, accepting=True)
    (hello_c,) = decoded([connect.hello()])
    (hello_a,) = decoded([accept.hello()])
    (proof_a,) = decoded(accept.receive(hello_c))
    (proof_c,) = decoded(connect.receive(hello_a))
    with pytest.raises(AuthenticationFailed, match="wrong secret"):
        accept.receive(proof_c)
    with pytest.raises(AuthenticationFailed, match="wrong secret"):
        connect.receive(proof_a)
    assert not accept.done and not connect.done


def test_a_proof_is_worth_nothing_on_another_connection_or_reflected() -> None:
    connect, first = Handshake(SECRET, accepting=False), Handshake(SECRET, accepting=True)
    (hello_c,) = decoded([connect.hello()])
    (hello_a,) = decoded([first.hello()])
    first.receive(hello_c)
    (recorded,) = decoded(connect.receive(hello_a))
    # replayed to a new connection (a fresh nonce): refused
    second = Handshake(SECRET, accepting=True)
    second.receive(hello_c)
    with pytest.raises(AuthenticationFailed):
        second.receive(recorded)
    # an accepting end's own proof sent back to it as the connecting end's: refused
    mirror = Handshake(SECRET, accepting=True, nonce=b"m" * 16)
    (reflected,) = decoded(mirror.receive(m.AuthHello(b"m" * 16)))
    with pytest.raises(AuthenticationFailed):
        mirror.receive(reflected)


@pytest.mark.parametrize(
    "first",
    [m.AuthProof(b"p" * 32), m.RegisterInstance("T", 1, "c", 1, 0), m.AuthHello(b"short")],
    ids=["proof-before-hello", "anything-else", "malformed-hello"],
)
def test_out_of_order_or_foreign_messages_fail_the_handshake(first: m.Message) -> None:
    accept = Handshake(SECRET, accepting=True)
    with pytest.raises(AuthenticationFailed):
        accept.receive(first)


def test_a_second_hello_fails_it() -> None:
    accept = Handshake(SECRET, accepting=True)
    accept.receive(m.AuthHello(b"a" * 16))
    assert accept.stage is Stage.PROVED
    with pytest.raises(AuthenticationFailed):
        accept.receive(m.AuthHello(b"b" * 16))
