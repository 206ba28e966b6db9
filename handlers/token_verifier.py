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

import functools
from typing import Any, Final, NamedTuple, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt import exceptions as jwt_exceptions
from jwt.types import Options

from handlers.contract import TENANT_CLAIM, is_valid_tenant_id

ALGORITHM: Final = "RS256"

CLOCK_SKEW_LEEWAY_SECONDS: Final = 5.0
"""Tolerance on ``exp``, ``nbf`` and ``iat`` for clock differences between Cognito and Lambda."""

REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "token_use", "sub")

_ALGORITHMS: Final = [ALGORITHM]
_OPTIONS: Final[Options] = {"require": list(REQUIRED_CLAIMS), "strict_aud": True}


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


class InvalidHeaderError(TokenError):
    """PyJWT refused a header parameter beyond parsing it: a ``kid`` that is not a string, a bad ``crit``."""

    reason = "invalid_header"


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


class TokenVerifier:
    """Verifies Cognito ID tokens of one user pool and app client; stateless apart from the key source."""

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

    def verify(self, token: str) -> VerifiedIdentity:
        """The identity in ``token``; raises a :class:`TokenError` or the key source's error."""
        claims = self._decode(token, self._keys.key_for(_key_id(token)))
        if claims["token_use"] != "id":
            raise WrongTokenUseError
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise InvalidSubjectError
        tenant_id = claims.get(TENANT_CLAIM)
        if tenant_id in ("", None):
            raise MissingTenantClaimError
        if not is_valid_tenant_id(tenant_id):
            raise InvalidTenantClaimError
        return VerifiedIdentity(subject, tenant_id, int(claims["exp"]))

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        try:
            decoded = jwt.decode_complete(
                token,
                key,
                algorithms=_ALGORITHMS,
                options=_OPTIONS,
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


def _key_id(token: str) -> str:
    """The ``kid`` of the token's JOSE header, read (unverified) only to pick the key."""
    header_segment, separator, _ = token.partition(".")
    if not separator:
        raise MalformedTokenError
    return _key_id_of_header(header_segment)


# Every token a key signs carries the same header segment, so its kid is read once per key (an unknown
# segment costs PyJWT's header parse, ~10 us, as much as the rest of the authorizer's own work). Only
# accepted segments are remembered: a raised check is not cached.
@functools.lru_cache(maxsize=64)
def _key_id_of_header(header_segment: str) -> str:
    """The kid named by a header segment. PyJWT reads a header from the first segment alone, so it is
    handed that segment with empty payload and signature: the payload is decoded once, when verified."""
    try:
        header = jwt.get_unverified_header(f"{header_segment}..")
    except jwt.DecodeError:
        raise MalformedTokenError from None
    except jwt.InvalidTokenError:
        raise InvalidHeaderError from None
    if header.get("alg") != ALGORITHM:
        raise DisallowedAlgorithmError
    if "kid" not in header:
        raise MissingKidError
    kid = header["kid"]
    if not kid:
        raise InvalidKidError
    return str(kid)
