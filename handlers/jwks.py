"""The user pool's signing keys: fetched once per container, kept, refetched sparingly.

Modelled on aws-jwt-verify's JWKS cache. PyJWT's ``PyJWKClient`` is not used:
its default timeout is 30 s, an unknown ``kid`` refetches on every call and a
failed fetch can drop the cached set (pyjwt#1162). Here:

- the set is fetched on first use with a short timeout and kept for the life
  of the container;
- a ``kid`` missing from the set triggers a refetch (key rotation), but at most
  one fetch per cooldown (the "penalty box"), so tokens with random ``kid``s
  cannot turn every request into a fetch;
- a failed or unusable fetch keeps the last good set;
- only RSA signature keys of at least 2048 bits, usable for RS256, are kept.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import PyJWTError

FETCH_TIMEOUT_SECONDS: Final = 2.0
"""Connect and read timeout of one JWKS fetch; an authorizer must answer well within API Gateway's 29 s."""

UNKNOWN_KID_COOLDOWN_SECONDS: Final = 10.0
"""At most one fetch per this many seconds (aws-jwt-verify's penalty box uses the same figure)."""

MAX_JWKS_BYTES: Final = 64 * 1024
"""A Cognito JWKS is well under 2 KB; anything this large is not one."""

MIN_RSA_KEY_BITS: Final = 2048

Fetcher = Callable[[str, float], bytes]
"""``fetcher(url, timeout_seconds)`` returns the JWKS document's bytes or raises."""

Clock = Callable[[], float]
"""Monotonic seconds."""

logger = Logger(child=True)


class JwksError(Exception):
    """A signing key could not be provided; ``reason`` is a log-safe code."""

    reason = "jwks_error"


class SigningKeysUnavailableError(JwksError):
    """No key set has ever been fetched successfully."""

    reason = "signing_keys_unavailable"


class UnknownKidError(JwksError):
    """The key set (fetched again, or fetched within the cooldown) has no key with this ``kid``."""

    reason = "unknown_kid"


class JwksDocumentError(ValueError):
    """The fetched document is not a JWKS with at least one usable RS256 key."""


def fetch_jwks_document(url: str, timeout: float) -> bytes:
    """GET ``url`` with the standard library (no extra dependency in the Lambda bundle)."""
    if not url.startswith(("https://", "http://")):
        raise JwksDocumentError(f"JWKS URL must be http(s), got {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise JwksDocumentError(f"JWKS document larger than {MAX_JWKS_BYTES} bytes")
    return body


def parse_jwks(document: bytes) -> dict[str, RSAPublicKey]:
    """The RS256-usable public keys of a JWKS document, by ``kid``; keys of other kinds are skipped."""
    try:
        parsed = json.loads(document)
    except (ValueError, RecursionError) as error:
        raise JwksDocumentError("JWKS document is not JSON") from error
    if not isinstance(parsed, dict) or not isinstance(parsed.get("keys"), list):
        raise JwksDocumentError('JWKS document is not an object with a "keys" list')
    keys: dict[str, RSAPublicKey] = {}
    for jwk in parsed["keys"]:
        usable = _usable_key(jwk)
        if usable is not None:
            keys[usable[0]] = usable[1]
    if not keys:
        raise JwksDocumentError("JWKS document holds no RSA signature key usable for RS256")
    return keys


def _usable_key(jwk: Any) -> tuple[str, RSAPublicKey] | None:
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
        return None
    try:
        key = RSAAlgorithm.from_jwk(jwk)
    except (PyJWTError, ValueError, TypeError):
        return None
    if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_KEY_BITS:
        return None
    return kid, key


class JwksCache:
    """Signing keys of one issuer by ``kid``. Thread-safe; lookups of known keys take no lock."""

    def __init__(
        self,
        url: str,
        *,
        fetcher: Fetcher = fetch_jwks_document,
        clock: Clock = time.monotonic,
        timeout: float = FETCH_TIMEOUT_SECONDS,
        cooldown: float = UNKNOWN_KID_COOLDOWN_SECONDS,
    ) -> None:
        self._url = url
        self._fetcher = fetcher
        self._clock = clock
        self._timeout = timeout
        self._cooldown = cooldown
        self._keys: Mapping[str, RSAPublicKey] = {}
        self._last_fetch_at: float | None = None
        self._fetch_lock = threading.Lock()

    def key_for(self, kid: str) -> RSAPublicKey:
        """The key with this ``kid``, fetching the set if allowed; raises a :class:`JwksError`."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._fetch_lock:
            # Another thread may have refreshed the set while this one waited.
            key = self._keys.get(kid)
            if key is None and self._may_fetch():
                self._refresh()
                key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys:
            raise SigningKeysUnavailableError
        raise UnknownKidError

    def _may_fetch(self) -> bool:
        return self._last_fetch_at is None or self._clock() - self._last_fetch_at >= self._cooldown

    def _refresh(self) -> None:
        self._last_fetch_at = self._clock()
        try:
            keys = parse_jwks(self._fetcher(self._url, self._timeout))
        # Whatever the fetcher raised (timeout, refused, HTTP error, bad document), the last
        # good set stays in place and the cooldown bounds the next attempt.
        except Exception as error:
            logger.warning(
                "JWKS fetch failed; keeping the last good key set",
                reason="jwks_fetch_failed",
                error_type=type(error).__name__,
                kept_keys=len(self._keys),
            )
            return
        self._keys = keys
