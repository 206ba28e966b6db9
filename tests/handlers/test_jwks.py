"""The JWKS cache under real traffic: fetched once, refetched at most once per cooldown, kept in outages."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from handlers.authorizer import Authorizer
from handlers.jwks import (
    UNKNOWN_KID_COOLDOWN_SECONDS,
    JwksCache,
    JwksDocumentError,
    SigningKeysUnavailableError,
    UnknownKidError,
    fetch_jwks_document,
    parse_jwks,
)
from tests.handlers.conftest import (
    ALLOW,
    UNAUTHORIZED,
    JwksServer,
    ManualClock,
    RegistryTable,
    SigningKey,
    bearer,
    id_token_claims,
    load_event,
    new_signing_key,
    outcome,
    settings_for,
)

COOLDOWN = UNKNOWN_KID_COOLDOWN_SECONDS


def random_kid() -> str:
    return str(uuid.uuid4())


def test_keys_are_fetched_once_and_kept(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a cache that has fetched the set
    cache = JwksCache(jwks_server.url, clock=clock)
    first = cache.key_for(signing_key.kid)

    # WHEN the same key is asked for again, long after
    clock.advance(24 * 3600)
    again = cache.key_for(signing_key.kid)

    # THEN the same key, and no second fetch
    assert again is first
    assert jwks_server.fetches == 1


def test_a_burst_of_random_kids_fetches_at_most_once_per_cooldown(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a cache warmed with the pool's keys
    cache = JwksCache(jwks_server.url, clock=clock)
    cache.key_for(signing_key.kid)

    # WHEN 3 bursts of 200 random kids arrive, spread over 2.5 cooldowns
    rejected = 0
    for _ in range(3):
        for _ in range(200):
            with pytest.raises(UnknownKidError):
                cache.key_for(random_kid())
            rejected += 1
            clock.advance(COOLDOWN * 2.5 / 600)

    # THEN all are rejected with one fetch per cooldown (the first, then one at 10 s and one at 20 s),
    # and the real key still works without a fetch
    assert rejected == 600
    assert jwks_server.fetches == 3
    fetches = jwks_server.fetches
    cache.key_for(signing_key.kid)
    assert jwks_server.fetches == fetches


def test_concurrent_unknown_kids_share_one_fetch(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a cold cache and a slow JWKS endpoint
    cache = JwksCache(jwks_server.url, clock=clock)
    jwks_server.delay_seconds = 0.2
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask(kid: str) -> None:
        try:
            cache.key_for(kid)
            result = "key"
        except UnknownKidError:
            result = "unknown"
        with lock:
            outcomes.append(result)

    # WHEN 16 threads ask at once, half for the real key and half for random kids
    threads = [
        threading.Thread(target=ask, args=(signing_key.kid if index % 2 else random_kid(),))
        for index in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN one fetch served them all
    assert jwks_server.fetches == 1
    assert sorted(outcomes) == ["key"] * 8 + ["unknown"] * 8


def test_an_outage_after_a_good_fetch_keeps_the_keys(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a cache that fetched the set, then the endpoint fails
    cache = JwksCache(jwks_server.url, clock=clock)
    key = cache.key_for(signing_key.kid)
    jwks_server.failing = True

    # WHEN an unknown kid forces a (failing) refetch after the cooldown
    clock.advance(COOLDOWN)
    with pytest.raises(UnknownKidError):
        cache.key_for(random_kid())

    # THEN the refetch was tried, and the known key is still served
    assert jwks_server.fetches == 2
    assert cache.key_for(signing_key.kid) is key


def test_a_failed_first_fetch_is_retried_only_after_the_cooldown(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN an endpoint down at cold start
    jwks_server.failing = True
    cache = JwksCache(jwks_server.url, clock=clock)

    # WHEN tokens keep coming while it is down, then it recovers
    for _ in range(20):
        with pytest.raises(SigningKeysUnavailableError):
            cache.key_for(signing_key.kid)
    fetches_while_down = jwks_server.fetches
    jwks_server.failing = False
    clock.advance(COOLDOWN)

    # THEN one attempt during the outage, and the key once the cooldown has passed
    assert fetches_while_down == 1
    assert (
        cache.key_for(signing_key.kid).public_numbers()
        == signing_key.private_key.public_key().public_numbers()
    )


def test_a_rotated_key_is_picked_up_by_the_next_allowed_refetch(
    jwks_server: JwksServer, signing_key: SigningKey, other_signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a warm cache, then the pool publishes a new key
    cache = JwksCache(jwks_server.url, clock=clock)
    cache.key_for(signing_key.kid)
    jwks_server.serve_keys(signing_key, other_signing_key)

    # WHEN a token signed with the new key arrives after the cooldown
    clock.advance(COOLDOWN)
    key = cache.key_for(other_signing_key.kid)

    # THEN it is found with one refetch
    assert key.public_numbers() == other_signing_key.private_key.public_key().public_numbers()
    assert jwks_server.fetches == 2


def test_a_stalled_endpoint_costs_at_most_the_timeout(
    jwks_server: JwksServer, signing_key: SigningKey
) -> None:
    # GIVEN an endpoint slower than the timeout
    jwks_server.delay_seconds = 2.0
    cache = JwksCache(jwks_server.url, timeout=0.2)

    # WHEN a key is asked for
    started = time.monotonic()
    with pytest.raises(SigningKeysUnavailableError):
        cache.key_for(signing_key.kid)

    # THEN the answer comes after about the timeout, not the stall
    assert time.monotonic() - started < 1.5


def test_through_the_authorizer_random_kids_get_401_and_valid_tokens_survive_an_outage(
    jwks_server: JwksServer, registry_table: RegistryTable, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN an authorizer that has verified one token
    authorizer = Authorizer.from_settings(settings_for(jwks_server, registry_table), clock=clock)
    assert (
        outcome(authorizer, load_event("authorizer_token", bearer(signing_key.sign(id_token_claims()))))[0]
        == ALLOW
    )

    # WHEN the JWKS endpoint goes down and 50 tokens with random kids arrive over 2 cooldowns
    jwks_server.failing = True
    answers = []
    for _ in range(50):
        token = signing_key.sign(id_token_claims(), kid=random_kid())
        answers.append(outcome(authorizer, load_event("authorizer_token", bearer(token)))[0])
        clock.advance(2 * COOLDOWN / 50)
    fresh = signing_key.sign(id_token_claims("globex"))

    # THEN each is 401, fetches stay within one per cooldown, and a new valid token is still allowed
    assert set(answers) == {UNAUTHORIZED}
    assert jwks_server.fetches <= 1 + 2
    assert outcome(authorizer, load_event("authorizer_token", bearer(fresh)))[0] == ALLOW


def jwks(*keys: Any) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def test_only_rsa_signature_keys_for_rs256_of_2048_bits_or_more_are_kept(signing_key: SigningKey) -> None:
    # GIVEN a JWKS mixing a usable key with keys of every unusable kind
    good = signing_key.jwk()
    weak = new_signing_key("weak", bits=1024).jwk()
    ec_key = json.loads(ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key()))
    document = jwks(
        good,
        {**good, "kid": "for-encryption", "use": "enc"},
        {**good, "kid": "rs512", "alg": "RS512"},
        {**good, "kid": None},
        {**good, "kid": 7},
        {**good, "kid": "no-modulus", "n": None},
        weak,
        {**ec_key, "kid": "ec"},
        "not-a-key",
    )

    # WHEN it is parsed / THEN only the usable key remains
    assert list(parse_jwks(document)) == [signing_key.kid]


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"not json",
        b"[]",
        b'{"keys": {}}',
        b'{"keys": []}',
        jwks({"kty": "oct", "kid": "h", "k": "c2VjcmV0"}),
    ],
)
def test_a_document_without_usable_keys_is_refused(document: bytes) -> None:
    with pytest.raises(JwksDocumentError):
        parse_jwks(document)


def test_an_unusable_document_does_not_replace_the_last_good_set(
    jwks_server: JwksServer, signing_key: SigningKey, clock: ManualClock
) -> None:
    # GIVEN a warm cache, then the endpoint serves an empty set
    cache = JwksCache(jwks_server.url, clock=clock)
    cache.key_for(signing_key.kid)
    jwks_server.document = jwks()

    # WHEN an unknown kid forces a refetch
    clock.advance(COOLDOWN)
    with pytest.raises(UnknownKidError):
        cache.key_for(random_kid())

    # THEN the pool's key is still there
    assert cache.key_for(signing_key.kid) is not None
    assert jwks_server.fetches == 2


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(JwksDocumentError):
        fetch_jwks_document("file:///etc/passwd", 1.0)
