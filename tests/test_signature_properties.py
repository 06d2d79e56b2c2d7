"""The ElevenLabs webhook signature check, property-tested: whatever header a sender makes up, the
answer is a verified request or `Unauthorized` (never another error), and only a signature made
with the secret, over these exact bytes, within the tolerance, verifies."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth import verify_elevenlabs_signature
from happ_integ.errors import Unauthorized

SECRET = "wsec_property_test"
NOW = 1_800_000_000


def sign(body: bytes, ts: int, secret: str = SECRET) -> str:
    return "t={},v0={}".format(
        ts, hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    )


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(header=st.one_of(st.none(), st.text(max_size=200)), body=st.binary(max_size=200))
def test_any_header_is_verified_or_unauthorized(header: str | None, body: bytes) -> None:
    try:
        verify_elevenlabs_signature(header, body, SECRET, now=NOW)
    except Unauthorized:
        return
    # Verified: then it must be a real signature of this body within the window.
    assert header is not None
    parts = dict(p.strip().split("=", 1) for p in header.split(",") if "=" in p)
    assert hmac.compare_digest(
        sign(body, int(parts["t"].strip())).split("v0=")[1], parts["v0"].strip().lower()
    )


@settings(max_examples=200, derandomize=True)
@given(body=st.binary(max_size=300), skew=st.integers(min_value=-1800, max_value=1800))
def test_a_real_signature_within_the_tolerance_verifies(body: bytes, skew: int) -> None:
    verify_elevenlabs_signature(sign(body, NOW + skew), body, SECRET, now=NOW)


@settings(max_examples=200, derandomize=True)
@given(body=st.binary(min_size=1, max_size=300), index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_changing_any_byte_of_the_body_breaks_it(body: bytes, index: int, bit: int) -> None:
    header = sign(body, NOW)
    i = index % len(body)
    changed = body[:i] + bytes([body[i] ^ (1 << bit)]) + body[i + 1 :]
    with pytest.raises(Unauthorized):
        verify_elevenlabs_signature(header, changed, SECRET, now=NOW)


@settings(max_examples=200, derandomize=True)
@given(
    body=st.binary(max_size=100),
    late=st.integers(min_value=1801, max_value=10**7),
    sign_of=st.sampled_from([1, -1]),
)
def test_outside_the_tolerance_is_refused(body: bytes, late: int, sign_of: int) -> None:
    with pytest.raises(Unauthorized, match="tolerance"):
        verify_elevenlabs_signature(sign(body, NOW + sign_of * late), body, SECRET, now=NOW)


@settings(max_examples=100, derandomize=True)
@given(body=st.binary(max_size=100), other=st.text(min_size=1, max_size=40).filter(lambda s: s != SECRET))
def test_another_secret_is_refused(body: bytes, other: str) -> None:
    with pytest.raises(Unauthorized):
        verify_elevenlabs_signature(sign(body, NOW, other), body, SECRET, now=NOW)


def test_parts_in_any_order_and_with_spaces_verify() -> None:
    body = b'{"type":"post_call_transcription"}'
    t_part, v_part = sign(body, NOW).split(",")
    for header in (
        f"{v_part},{t_part}",
        f" {t_part} , {v_part} ",
        f"{t_part},{v_part.upper().replace('V0=', 'v0=')}",
    ):
        verify_elevenlabs_signature(header, body, SECRET, now=NOW)
