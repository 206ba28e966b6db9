"""The table of tokens: each bad token gets 401 for its own reason, a valid token of an unknown or suspended
tenant gets Deny, a valid token of an active tenant gets Allow. Tokens are minted here with keys made here."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.authorizer import (
    MAX_AUTHORIZATION_HEADER_CHARS,
    Authorizer,
    HeaderTooLargeError,
    MalformedAuthorizationHeaderError,
    MissingTokenError,
)
from handlers.contract import TENANT_CLAIM
from handlers.jwks import UnknownKidError
from handlers.token_verifier import (
    CLOCK_SKEW_LEEWAY_SECONDS,
    BadSignatureError,
    DisallowedAlgorithmError,
    InvalidHeaderError,
    InvalidKidError,
    InvalidSubjectError,
    InvalidTenantClaimError,
    MalformedTokenError,
    MissingClaimError,
    MissingKidError,
    MissingTenantClaimError,
    TokenExpiredError,
    TokenNotYetValidError,
    WrongAudienceError,
    WrongIssuerError,
    WrongTokenUseError,
)
from tests.handlers.conftest import (
    ALLOW,
    APP_CLIENT_ID,
    AWS_REGION,
    DENY,
    ISSUER,
    UNAUTHORIZED,
    SigningKey,
    bearer,
    create_registry_table,
    hand_made_token,
    id_token_claims,
    load_event,
    moto_aws,
    outcome,
    serving_jwks,
    settings_for,
)


@dataclass(frozen=True)
class Keys:
    pool: SigningKey
    stranger: SigningKey


@dataclass(frozen=True)
class Case:
    name: str
    authorization: Callable[[Keys], str]
    expected: str
    error: type[Exception] | None = None


@dataclass(frozen=True)
class FromNow:
    """A time claim ``seconds`` from the moment the token is minted."""

    seconds: float


def signed(**overrides: Any) -> Callable[[Keys], str]:
    """A header carrying an ID token of acme signed by the pool's key, with claims overridden."""

    def make(keys: Keys) -> str:
        now = time.time()
        claims = {
            name: int(now + value.seconds) if isinstance(value, FromNow) else value
            for name, value in overrides.items()
        }
        return bearer(keys.pool.sign(id_token_claims(now=now, **claims)))

    return make


def signed_for(tenant_id: Any) -> Callable[[Keys], str]:
    return lambda keys: bearer(keys.pool.sign(id_token_claims(tenant_id)))


def with_header(header: dict[str, Any]) -> Callable[[Keys], str]:
    """A correctly signed token whose JOSE header is exactly ``header``."""
    return lambda keys: bearer(keys.pool.sign_raw(header, id_token_claims()))


def hs256_with_public_key(keys: Keys) -> str:
    """The classic confusion attack: HMAC-SHA256 keyed with the pool's public key in PEM."""
    secret = keys.pool.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = hand_made_token({"alg": "HS256", "typ": "JWT", "kid": keys.pool.kid}, id_token_claims())
    signing_input = unsigned.rsplit(".", 1)[0]
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return bearer(
        hand_made_token({"alg": "HS256", "typ": "JWT", "kid": keys.pool.kid}, id_token_claims(), signature)
    )


def tampered_payload(keys: Keys) -> str:
    """The payload of a globex token under the signature of an acme token."""
    acme = keys.pool.sign(id_token_claims("acme"))
    globex = keys.pool.sign(id_token_claims("globex"))
    header, _, signature = acme.split(".")
    return bearer(f"{header}.{globex.split('.')[1]}.{signature}")


def oversized(keys: Keys) -> str:
    token = keys.pool.sign(id_token_claims(padding="p" * MAX_AUTHORIZATION_HEADER_CHARS))
    return bearer(token)


LEEWAY = CLOCK_SKEW_LEEWAY_SECONDS

CASES = [
    Case("valid silo tenant", signed_for("acme"), ALLOW),
    Case("valid pooled tenant", signed_for("globex"), ALLOW),
    Case("scheme in lower case", lambda keys: f"bearer {keys.pool.sign(id_token_claims())}", ALLOW),
    Case("scheme in upper case", lambda keys: f"BEARER {keys.pool.sign(id_token_claims())}", ALLOW),
    Case("expired within the leeway", signed(exp=FromNow(-LEEWAY / 2)), ALLOW),
    Case("nbf within the leeway", signed(nbf=FromNow(LEEWAY / 2)), ALLOW),
    Case("unknown tenant", signed_for("hooli"), DENY),
    Case("suspended tenant", signed_for("initech"), DENY),
    Case("empty header", lambda _: "", UNAUTHORIZED, MissingTokenError),
    Case(
        "not Bearer",
        lambda keys: f"Basic {keys.pool.sign(id_token_claims())}",
        UNAUTHORIZED,
        MalformedAuthorizationHeaderError,
    ),
    Case(
        "token without scheme",
        lambda keys: keys.pool.sign(id_token_claims()),
        UNAUTHORIZED,
        MalformedAuthorizationHeaderError,
    ),
    Case("Bearer without token", lambda _: "Bearer ", UNAUTHORIZED, MalformedAuthorizationHeaderError),
    Case(
        "two spaces",
        lambda keys: f"Bearer  {keys.pool.sign(id_token_claims())}",
        UNAUTHORIZED,
        MalformedAuthorizationHeaderError,
    ),
    Case(
        "two tokens",
        lambda keys: f"Bearer {keys.pool.sign(id_token_claims())} x",
        UNAUTHORIZED,
        MalformedAuthorizationHeaderError,
    ),
    Case("oversized", oversized, UNAUTHORIZED, HeaderTooLargeError),
    Case("not a JWT", lambda _: "Bearer not-a-token", UNAUTHORIZED, MalformedTokenError),
    Case("header not JSON", lambda _: "Bearer bm90LWpzb24.e30.c2ln", UNAUTHORIZED, MalformedTokenError),
    Case(
        "four segments",
        lambda keys: bearer(keys.pool.sign(id_token_claims()) + ".e30"),
        UNAUTHORIZED,
        MalformedTokenError,
    ),
    Case(
        "bad signature",
        lambda keys: bearer(keys.stranger.sign(id_token_claims(), kid=keys.pool.kid)),
        UNAUTHORIZED,
        BadSignatureError,
    ),
    Case("payload swapped under a signature", tampered_payload, UNAUTHORIZED, BadSignatureError),
    Case("expired", signed(exp=FromNow(-60)), UNAUTHORIZED, TokenExpiredError),
    Case("not yet valid (nbf)", signed(nbf=FromNow(120)), UNAUTHORIZED, TokenNotYetValidError),
    Case("iat in the future", signed(iat=FromNow(120)), UNAUTHORIZED, TokenNotYetValidError),
    Case(
        "wrong issuer",
        signed(iss=f"https://cognito-idp.{AWS_REGION}.amazonaws.com/{AWS_REGION}_Other"),
        UNAUTHORIZED,
        WrongIssuerError,
    ),
    Case("issuer superset", signed(iss=ISSUER + "x"), UNAUTHORIZED, WrongIssuerError),
    Case("issuer prefix", signed(iss=ISSUER[:-1]), UNAUTHORIZED, WrongIssuerError),
    Case("issuer with trailing slash", signed(iss=ISSUER + "/"), UNAUTHORIZED, WrongIssuerError),
    Case("wrong audience", signed(aud="another-app-client"), UNAUTHORIZED, WrongAudienceError),
    Case("audience as a list", signed(aud=[APP_CLIENT_ID]), UNAUTHORIZED, WrongAudienceError),
    Case("access token with aud", signed(token_use="access"), UNAUTHORIZED, WrongTokenUseError),
    Case(
        "access token as Cognito issues it",
        signed(token_use="access", aud=None, client_id=APP_CLIENT_ID),
        UNAUTHORIZED,
        MissingClaimError,
    ),
    Case(
        "alg none",
        lambda keys: bearer(hand_made_token({"alg": "none", "kid": keys.pool.kid}, id_token_claims())),
        UNAUTHORIZED,
        DisallowedAlgorithmError,
    ),
    Case("HS256 keyed with the public key", hs256_with_public_key, UNAUTHORIZED, DisallowedAlgorithmError),
    Case("RS512", with_header({"alg": "RS512", "kid": "pool-key-1"}), UNAUTHORIZED, DisallowedAlgorithmError),
    Case(
        "unknown kid",
        lambda keys: bearer(keys.pool.sign(id_token_claims(), kid="no-such-kid")),
        UNAUTHORIZED,
        UnknownKidError,
    ),
    Case("kid is an int", with_header({"alg": "RS256", "kid": 1}), UNAUTHORIZED, InvalidHeaderError),
    Case(
        "kid is a list",
        with_header({"alg": "RS256", "kid": ["pool-key-1"]}),
        UNAUTHORIZED,
        InvalidHeaderError,
    ),
    Case(
        "unsupported critical extension",
        with_header({"alg": "RS256", "kid": "pool-key-1", "crit": ["exp-ext"], "exp-ext": 1}),
        UNAUTHORIZED,
        InvalidHeaderError,
    ),
    Case("kid is empty", with_header({"alg": "RS256", "kid": ""}), UNAUTHORIZED, InvalidKidError),
    Case("kid missing", with_header({"alg": "RS256", "typ": "JWT"}), UNAUTHORIZED, MissingKidError),
    Case("exp missing", signed(exp=None), UNAUTHORIZED, MissingClaimError),
    Case("iat missing", signed(iat=None), UNAUTHORIZED, MissingClaimError),
    Case("iss missing", signed(iss=None), UNAUTHORIZED, MissingClaimError),
    Case("token_use missing", signed(token_use=None), UNAUTHORIZED, MissingClaimError),
    Case("sub missing", signed(sub=None), UNAUTHORIZED, MissingClaimError),
    Case("sub empty", signed(sub=""), UNAUTHORIZED, InvalidSubjectError),
    Case("sub not a string", signed(sub=42), UNAUTHORIZED, InvalidSubjectError),
    Case("tenant claim missing", signed(**{TENANT_CLAIM: None}), UNAUTHORIZED, MissingTenantClaimError),
    Case("tenant claim empty", signed_for(""), UNAUTHORIZED, MissingTenantClaimError),
    Case("tenant claim *", signed_for("*"), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim with /", signed_for("acme/globex"), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim unicode", signed_for("acmé"), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim lookalike", signed_for("\u0430cme"), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim upper case", signed_for("ACME"), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim too long", signed_for("a" * 33), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim with space", signed_for("acme "), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim a number", signed_for(7), UNAUTHORIZED, InvalidTenantClaimError),
    Case("tenant claim a list", signed_for(["acme"]), UNAUTHORIZED, InvalidTenantClaimError),
]


@pytest.fixture(scope="module")
def keys(signing_key: SigningKey, other_signing_key: SigningKey) -> Keys:
    return Keys(signing_key, other_signing_key)


@pytest.fixture(scope="module")
def shared_authorizer(signing_key: SigningKey) -> Iterator[Authorizer]:
    """One authorizer, JWKS server and registry for the whole table of cases (each case is one token)."""
    with moto_aws(), serving_jwks(signing_key) as jwks_server:
        yield Authorizer.from_settings(settings_for(jwks_server, create_registry_table()))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_token_gets_its_status(shared_authorizer: Authorizer, keys: Keys, case: Case) -> None:
    authorizer = shared_authorizer
    # GIVEN an Authorization header built for the case
    event = load_event("authorizer_token", case.authorization(keys))

    # WHEN API Gateway calls the authorizer
    effect, _ = outcome(authorizer, event)

    # THEN the answer is the one the case must get, for the reason it must get it
    assert effect == case.expected
    if case.error is not None:
        with pytest.raises(case.error):
            authorizer.decide(event)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(authorization=st.one_of(st.text(max_size=300), st.from_regex(r"[Bb]earer [A-Za-z0-9._=-]{0,300}")))
def test_any_header_gets_401_never_a_500(shared_authorizer: Authorizer, authorization: str) -> None:
    assert outcome(shared_authorizer, load_event("authorizer_token", authorization)) == (UNAUTHORIZED, None)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_one_character_change_to_a_valid_token_gets_401(
    shared_authorizer: Authorizer, signing_key: SigningKey, data: st.DataObject
) -> None:
    # GIVEN a valid token of an active tenant, with one character replaced
    token = signing_key.sign(id_token_claims("globex"))
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")
    )
    changed = token[:position] + replacement + token[position + 1 :]

    # WHEN it is presented / THEN it is refused (unless the replacement changed nothing)
    expected = ALLOW if changed == token else UNAUTHORIZED
    assert outcome(shared_authorizer, load_event("authorizer_token", bearer(changed)))[0] == expected
