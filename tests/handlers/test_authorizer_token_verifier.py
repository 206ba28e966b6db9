"""The faster segment decoder accepts and rejects exactly what PyJWT's own does, and PyJWT really uses it."""

from __future__ import annotations

import jwt
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jwt.api_jws import PyJWS

from handlers import token_verifier
from handlers.token_verifier import TokenVerifier

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

segments = st.one_of(
    st.text(alphabet=BASE64URL, max_size=24),
    st.text(alphabet=BASE64URL + "=+/ .!\n", max_size=24),
    st.builds(
        lambda body, pad: body + "=" * pad, st.text(alphabet=BASE64URL, max_size=24), st.integers(0, 4)
    ),
    st.binary(max_size=24).map(lambda raw: raw.decode("latin-1")),
)


def decoded_or_error(decoder: object, segment: bytes) -> bytes | str:
    try:
        result: bytes = decoder._decode_base64url_segment(segment, "payload")  # type: ignore[attr-defined]
    except jwt.DecodeError as error:
        return f"DecodeError: {error}"
    return result


@settings(max_examples=60, deadline=None)
@given(segments)
@example("QQ")  # canonical 1-byte tail
@example("QR")  # non-zero unused bits: rejected by both
@example("QUE")
@example("QUF")
@example("QQ==")
@example("QQ=")
@example("Q===")
@example("")
def test_segment_decoder_matches_pyjwt(segment: str) -> None:
    raw = segment.encode("latin-1")
    assert decoded_or_error(token_verifier._SegmentDecodingJWS, raw) == decoded_or_error(PyJWS, raw)


@pytest.mark.parametrize(
    ("pyjwt_class", "hook"),
    [(PyJWS, "_decode_base64url_segment"), (PyJWS, "_load"), (jwt.PyJWT, "_decode_payload")],
)
def test_pyjwt_still_has_the_hooks_the_overrides_replace(pyjwt_class: type, hook: str) -> None:
    # If PyJWT renames one, its override silently stops applying; this says so at the upgrade.
    assert callable(getattr(pyjwt_class, hook, None)), f"PyJWT no longer has {pyjwt_class.__name__}.{hook}"


def test_the_verifier_decodes_through_the_override() -> None:
    class NoKeys:
        def key_for(self, kid: str) -> object:
            raise AssertionError("not reached")

    verifier = TokenVerifier(issuer="https://issuer", audience="client", keys=NoKeys())  # type: ignore[arg-type]
    assert isinstance(verifier._decoder._jws, token_verifier._SegmentDecodingJWS)


@pytest.mark.parametrize(("issuer", "audience"), [("", "client"), ("https://issuer", "")])
def test_issuer_and_audience_are_mandatory(issuer: str, audience: str) -> None:
    with pytest.raises(ValueError, match="issuer and audience"):
        TokenVerifier(issuer=issuer, audience=audience, keys=None)  # type: ignore[arg-type]
