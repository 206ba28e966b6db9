"""Verification of Cognito ID tokens with PyJWT: one error type per failed check.

The checks (after aws-jwt-verify): the algorithm is RS256 and nothing else; the
``kid`` is a string naming a key of the user pool's JWKS; the signature holds;
``iss`` equals the issuer exactly; ``aud`` equals the app client id; the token
is an ID token (``token_use == "id"``; custom attributes appear in ID tokens
only); ``exp``, ``iat``, ``iss``, ``aud``, ``token_use`` and ``sub`` are
present; ``exp``, ``nbf`` and ``iat`` hold within :data:`CLOCK_SKEW_LEEWAY_SECONDS`;
the tenant claim is a valid tenant id.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any, Final, NamedTuple, Protocol, cast

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import exceptions as jwt_exceptions
from jwt.types import SigOptions

from handlers.contract import TENANT_CLAIM, is_valid_tenant_id

ALGORITHM: Final = "RS256"

CLOCK_SKEW_LEEWAY_SECONDS: Final = 5.0
"""Tolerance on ``exp``, ``nbf`` and ``iat`` for clock differences between Cognito and Lambda."""

REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "token_use", "sub")

_ALGORITHMS: Final = (ALGORITHM,)

_MAX_VALID_TENANT_IDS: Final = 20_000
"""Bound on the tenant ids remembered as valid (twice AWS's 10,000 API keys per region)."""

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# "+" and "/" become "!", which strict decoding rejects like every other byte outside the alphabet.
_BASE64URL_TO_STANDARD: Final = bytes.maketrans(b"-_+/", b"+/!!")
_PADDING: Final = (b"", b"", b"==", b"=")
"""What a segment of length 0, 1, 2, 3 modulo 4 needs to be whole base64 (1 is invalid anyway)."""
# Last characters whose unused low bits are zero, by segment length modulo 4:
# 2 characters carry 8 bits (4 unused), 3 characters carry 16 bits (2 unused).
_CANONICAL_LAST: Final = {
    2: frozenset(_ALPHABET[index] for index in range(0, 64, 16)),
    3: frozenset(_ALPHABET[index] for index in range(0, 64, 4)),
}


class KeySource(Protocol):
    """Where verification keys come from (:class:`handlers.jwks.JwksCache`)."""

    def key_for(self, kid: str) -> RSAPublicKey: ...


class TokenError(Exception):
    """The token fails a check; ``reason`` is a log-safe code naming the check."""

    reason = "token_invalid"


class MalformedTokenError(TokenError):
    reason = "malformed_token"


class DisallowedAlgorithmError(TokenError):
    reason = "disallowed_algorithm"


class MissingKidError(TokenError):
    reason = "missing_kid"


class InvalidKidError(TokenError):
    reason = "invalid_kid"


class BadSignatureError(TokenError):
    reason = "bad_signature"


class TokenExpiredError(TokenError):
    reason = "token_expired"


class TokenNotYetValidError(TokenError):
    """``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    reason = "token_not_yet_valid"


class WrongIssuerError(TokenError):
    reason = "wrong_issuer"


class WrongAudienceError(TokenError):
    reason = "wrong_audience"


class WrongTokenUseError(TokenError):
    reason = "wrong_token_use"


class MissingClaimError(TokenError):
    reason = "missing_claim"


class InvalidSubjectError(TokenError):
    reason = "invalid_subject"


class MissingTenantClaimError(TokenError):
    reason = "missing_tenant_claim"


class InvalidTenantClaimError(TokenError):
    reason = "invalid_tenant_claim"


class VerifiedIdentity(NamedTuple):
    """What the authorizer needs from a verified token."""

    subject: str
    tenant_id: str
    expires_at: int
    """The token's ``exp`` (epoch seconds)."""


class _SegmentDecodingJWS(jwt.PyJWS):
    """PyJWS with a faster segment decoder, same rules.

    PyJWT 2.15 tests each character of each segment against the alphabet in a
    Python generator, which costs more than the signature check for a
    Cognito-sized token. This override keeps its rules exactly (at most two
    ``=`` of padding on a 4-aligned segment, base64url alphabet, canonical
    encoding: the unused bits of the last character are zero) with C-level
    checks and one strict-mode ``binascii`` decode (which rejects any byte
    outside the alphabet), and is checked against PyJWT's own in the tests.

    All tokens signed with one key share one header segment, so the header PyJWT
    decodes and parses is remembered by segment (at most :data:`_MAX_HEADERS`,
    only headers PyJWT accepted, only of the ordinary non-detached form): a
    known header then costs a dictionary lookup instead of a base64 and a JSON
    decode. Payload and signature are decoded for every token, as PyJWT does.
    """

    _MAX_HEADERS: Final = 64

    def __init__(self, options: SigOptions) -> None:
        super().__init__(options=options)
        self._headers: dict[bytes, dict[str, Any]] = {}

    def _load(self, jwt: str | bytes) -> tuple[bytes, bytes, dict[str, Any], bytes]:
        token = jwt.encode("utf-8") if isinstance(jwt, str) else jwt
        try:
            # Split exactly as PyJWS._load does, so a known header changes no outcome.
            signing_input, crypto_segment = token.rsplit(b".", 1)
            header_segment, payload_segment = signing_input.split(b".", 1)
        except ValueError:
            return super()._load(token)
        header = self._headers.get(header_segment)
        if header is None:
            loaded = super()._load(token)
            if loaded[2].get("b64", True) is not False:
                if len(self._headers) >= self._MAX_HEADERS:
                    self._headers.clear()
                self._headers[header_segment] = dict(loaded[2])
            return loaded
        payload = self._decode_base64url_segment(payload_segment, "payload")
        signature = self._decode_base64url_segment(crypto_segment, "crypto")
        return payload, signing_input, dict(header), signature

    @staticmethod
    def _decode_base64url_segment(segment: bytes, name: str) -> bytes:
        stripped = segment.rstrip(b"=")
        padding = len(segment) - len(stripped)
        remainder = len(stripped) % 4
        if (
            padding > 2
            or (padding and len(segment) % 4 != 0)
            or remainder == 1
            or (remainder and stripped[-1] not in _CANONICAL_LAST[remainder])
        ):
            raise jwt.DecodeError(f"Invalid {name} padding")
        try:
            return binascii.a2b_base64(
                stripped.translate(_BASE64URL_TO_STANDARD) + _PADDING[remainder], strict_mode=True
            )
        except binascii.Error as err:
            raise jwt.DecodeError(f"Invalid {name} padding") from err


class _Decoder(jwt.PyJWT):
    def __init__(self) -> None:
        # Options fixed at construction so decode() does not merge them on every call.
        super().__init__(options={"require": list(REQUIRED_CLAIMS), "strict_aud": True})
        self._jws = _SegmentDecodingJWS(options=self._get_sig_options())

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        # json.loads(bytes) first guesses among UTF-8, -16 and -32 (json.detect_encoding) in Python;
        # a payload starting with "{" and no NUL after it is UTF-8 to that guess, so decode it directly.
        raw = decoded["payload"]
        if raw[:1] != b"{" or raw[1:2] == b"\x00":
            return super()._decode_payload(decoded)
        try:
            text = raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return super()._decode_payload(decoded)  # PyJWT reports it as it always does
        return super()._decode_payload({**decoded, "payload": text})


class TokenVerifier:
    """Verifies Cognito ID tokens of one user pool and app client.

    Stateless apart from the key source and bounded memos of results that depend on their input
    only (a header's ``kid``, a parsed header, tenant ids found valid).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        keys: KeySource,
        leeway: float = CLOCK_SKEW_LEEWAY_SECONDS,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience are both required")
        self._issuer = issuer
        self._audience = audience
        self._keys = keys
        self._leeway = leeway
        self._decoder = _Decoder()
        self._key_ids = _KeyIdMemo()
        # Tenant claims already found valid; they come from verified tokens only, so from the user pool.
        self._valid_tenant_ids: set[str] = set()

    def verify(self, token: str) -> VerifiedIdentity:
        """The identity in ``token``; raises a :class:`TokenError` or the key source's error."""
        header_end = token.find(".")
        kid = self._key_ids.kid_of(token[:header_end] if header_end >= 0 else token)
        claims = self._decode(token, self._keys.key_for(kid))
        if claims["token_use"] != "id":
            raise WrongTokenUseError
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidSubjectError
        tenant_id = claims.get(TENANT_CLAIM)
        if tenant_id in ("", None):
            raise MissingTenantClaimError
        if not isinstance(tenant_id, str) or tenant_id not in self._valid_tenant_ids:
            self._check_tenant_id(tenant_id)
        return VerifiedIdentity(subject, tenant_id, int(claims["exp"]))

    def _check_tenant_id(self, tenant_id: object) -> None:
        if not is_valid_tenant_id(tenant_id):
            raise InvalidTenantClaimError
        if len(self._valid_tenant_ids) >= _MAX_VALID_TENANT_IDS:
            self._valid_tenant_ids.clear()
        self._valid_tenant_ids.add(cast(str, tenant_id))  # is_valid_tenant_id holds: a string

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        try:
            decoded = self._decoder.decode_complete(
                token,
                key,
                algorithms=_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
            )
        except jwt.InvalidSignatureError:
            raise BadSignatureError from None
        except jwt.ExpiredSignatureError:
            raise TokenExpiredError from None
        except jwt.ImmatureSignatureError:
            raise TokenNotYetValidError from None
        except jwt.InvalidIssuerError:
            raise WrongIssuerError from None
        except jwt.InvalidAudienceError:
            raise WrongAudienceError from None
        except jwt.MissingRequiredClaimError:
            raise MissingClaimError from None
        except jwt.InvalidAlgorithmError:
            raise DisallowedAlgorithmError from None
        except jwt_exceptions.InvalidSubjectError:
            raise InvalidSubjectError from None
        except jwt.PyJWTError:
            raise MalformedTokenError from None
        claims: dict[str, Any] = decoded["payload"]
        return claims


class _KeyIdMemo:
    """The ``kid`` named by a JOSE header segment, remembered per segment.

    All tokens signed with one key share one header segment, so reading the
    header to pick the key costs a dictionary lookup. Only headers that pass
    the checks are remembered, at most :data:`_MAX_HEADERS` of them; PyJWT
    checks the whole header again during decoding.
    """

    _MAX_HEADERS: Final = 64

    def __init__(self) -> None:
        self._kids: dict[str, str] = {}

    def kid_of(self, header_segment: str) -> str:
        kid = self._kids.get(header_segment)
        if kid is None:
            kid = _checked_kid(header_segment)
            if len(self._kids) >= self._MAX_HEADERS:
                self._kids.clear()
            self._kids[header_segment] = kid
        return kid


def _checked_kid(header_segment: str) -> str:
    header = _unverified_header(header_segment)
    if header.get("alg") != ALGORITHM:
        raise DisallowedAlgorithmError
    if "kid" not in header:
        raise MissingKidError
    kid = header["kid"]
    if not isinstance(kid, str) or not kid:
        raise InvalidKidError
    return kid


def _unverified_header(header_segment: str) -> Mapping[str, Any]:
    """The JOSE header, read only to pick the key."""
    try:
        segment = header_segment.encode("ascii")
        header = json.loads(_SegmentDecodingJWS._decode_base64url_segment(segment, "header"))
    except (jwt.DecodeError, ValueError, RecursionError):
        raise MalformedTokenError from None
    if not isinstance(header, dict):
        raise MalformedTokenError
    return header
