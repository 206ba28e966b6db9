"""The authorizer's hot path against PyJWT's own ``decode_complete``, and the handlers' import times.

    python benchmarks/authorizer.py [--tokens N] [--import-runs N] [--quick]

What is real: :class:`handlers.authorizer.Authorizer` built by ``Authorizer.from_settings``
(the token verifier, the JWKS cache parsing a real JWKS document, the tenant registry cache
parsing real registry items, the decision cache, powertools' policy builder) and its
``handle(event)``, which is all ``lambda_handler`` does after its first call. Tokens are RS256
Cognito-shaped ID tokens signed with a 2048-bit key generated here.

What is faked: where the keys and items come from. The JWKS "fetch" returns the document from
memory and the DynamoDB client is an object with ``get_item`` answering from a dict of the
items tiers.registry writes; both count their calls. Warm-up reads every tenant once; the
measured loops must then touch neither (checked: the script fails if they do), so the fakes
are not on the measured path.

Measured, each as per-call latencies (p50, p99) and calls per second:

- distinct tokens: every call carries a token not seen before, so the decision cache misses
  and each call verifies a signature, checks claims and builds (or reuses) the policy;
- a repeated token: the same token again and again (the decision cache's hit path);
- PyJWT decode: ``jwt.decode_complete`` of the same tokens with the verifier's options, issuer,
  audience, leeway and public key: what verifying a token costs through the library alone. The
  authorizer adds the key lookup by ``kid``, the claim checks of its own, the registry cache and the
  policy.

Import time: each handler module imported in a fresh interpreter, median of several runs, with
bytecode caches present, and once without (a fresh ``PYTHONPYCACHEPREFIX``: every module
compiled from source); ``-X importtime`` gives what dominates. The last line is
``authorizer p50 <X> us = <R>x PyJWT decode``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import RSAAlgorithm

from benchmarks.arguments import positive
from handlers.authorizer import Authorizer, AuthorizerSettings
from handlers.contract import REGISTRY_PARTITION_KEY, TENANT_CLAIM
from handlers.token_verifier import CLOCK_SKEW_LEEWAY_SECONDS, REQUIRED_CLAIMS
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier
from tiers.naming import Naming
from tiers.registry import registry_item

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
REGION: Final = "eu-west-1"
USER_POOL_ID: Final = f"{REGION}_BenchPool1"
ISSUER: Final = f"https://cognito-idp.{REGION}.amazonaws.com/{USER_POOL_ID}"
JWKS_URL: Final = f"{ISSUER}/.well-known/jwks.json"
APP_CLIENT_ID: Final = "4bench0app0client0id000123"
METHOD_ARN: Final = f"arn:aws:execute-api:{REGION}:123456789012:a1b2c3d4e5/v1/GET/items/item-42"
KID: Final = "bench-key-1"
TENANTS: Final = 100
ROUNDS: Final = 10
HANDLER_MODULES: Final = ("handlers.authorizer", "handlers.tenant_api")

TARGET_WARM_RATIO: Final = 1.25
TARGET_REPEATED_US: Final = 10.0
TARGET_IMPORT_MS: Final = 300.0


@dataclass(frozen=True)
class Latencies:
    name: str
    p50_us: float
    p99_us: float
    per_second: float

    def line(self) -> str:
        return (
            f"  {self.name:<22} p50 {self.p50_us:8.1f} us   p99 {self.p99_us:8.1f} us"
            f"   {self.per_second:>9,.0f} /s"
        )


class Timings:
    """Per-call durations of one measured path, gathered over several rounds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._durations: list[int] = []
        self._total_ns = 0

    def run(self, call: Callable[[Any], object], inputs: Iterable[Any]) -> None:
        """``call`` once per input, each call timed."""
        clock = time.perf_counter_ns
        durations = self._durations
        started = clock()
        for value in inputs:
            before = clock()
            call(value)
            durations.append(clock() - before)
        self._total_ns += clock() - started

    def latencies(self) -> Latencies:
        durations = sorted(self._durations)
        return Latencies(
            name=self.name,
            p50_us=statistics.median(durations) / 1000,
            p99_us=durations[round(0.99 * (len(durations) - 1))] / 1000,
            per_second=len(durations) / (self._total_ns / 1e9),
        )


# Keys, tokens and the registry the authorizer reads.


def catalog(tenants: int) -> Catalog:
    tiers = {
        "basic": Tier("basic", Isolation.POOLED, Throttle(10, 20), Quota(10_000, QuotaPeriod.MONTH)),
        "premium": Tier("premium", Isolation.SILO, Throttle(200, 400), Quota(5_000_000, QuotaPeriod.MONTH)),
    }
    return Catalog(
        tiers=tiers,
        tenants={
            f"tenant-{index:04d}": Tenant(
                f"tenant-{index:04d}", "premium" if index % 10 == 0 else "basic", f"Tenant {index}"
            )
            for index in range(tenants)
        },
    )


def id_token(private_key: rsa.RSAPrivateKey, tenant_id: str, serial: int, issued_at: int) -> str:
    """A Cognito-shaped ID token; ``serial`` makes it unique (its subject, username and jti)."""
    claims = {
        "sub": f"5f0c7a1e-33d1-4b8e-9d4a-{serial:012d}",
        "email_verified": True,
        "iss": ISSUER,
        "cognito:username": f"user-{serial}",
        "origin_jti": f"0a5c0e6b-1b5e-4c5e-9b8e-{serial:012d}",
        "aud": APP_CLIENT_ID,
        "event_id": f"9d1e4c6a-2f3b-4a5c-8d7e-{serial:012d}",
        "token_use": "id",
        "auth_time": issued_at,
        "exp": issued_at + 3600,
        "iat": issued_at,
        "jti": f"7b2d9f4e-5a6c-4d3b-a1e2-{serial:012d}",
        "email": f"user-{serial}@example.com",
        TENANT_CLAIM: tenant_id,
    }
    token: str = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": KID})
    return token


class InMemoryJwks:
    """The JWKS "endpoint": the document from memory, counting fetches."""

    def __init__(self, public_key: RSAPublicKey) -> None:
        jwk = {**json.loads(RSAAlgorithm.to_jwk(public_key)), "kid": KID, "alg": "RS256", "use": "sig"}
        self._document = json.dumps({"keys": [jwk]}).encode()
        self.fetches = 0

    def __call__(self, url: str, _timeout: float) -> bytes:
        if url != JWKS_URL:
            raise ValueError(f"unexpected JWKS URL {url}")
        self.fetches += 1
        return self._document


class InMemoryRegistry:
    """A DynamoDB client with ``get_item`` only, answering from the registry items; counts reads."""

    def __init__(self, items: Mapping[str, Mapping[str, Any]]) -> None:
        self._items = items
        self.reads = 0

    def get_item(self, **kwargs: Any) -> Mapping[str, Any]:
        self.reads += 1
        item = self._items.get(kwargs["Key"][REGISTRY_PARTITION_KEY]["S"])
        return {} if item is None else {"Item": item}


def event(token: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}


def pyjwt_decoder(public_key: RSAPublicKey) -> Callable[[str], None]:
    """The floor: PyJWT's public ``decode_complete`` with the verifier's checks and the same key."""

    def decode(token: str) -> None:
        jwt.decode_complete(
            token,
            public_key,
            algorithms=["RS256"],
            options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
            issuer=ISSUER,
            audience=APP_CLIENT_ID,
            leeway=CLOCK_SKEW_LEEWAY_SECONDS,
        )

    return decode


@dataclass(frozen=True)
class HotPath:
    distinct: Latencies
    repeated: Latencies
    pyjwt: Latencies
    jwks_fetches: int
    registry_reads: int
    tenants: int


def hot_path(token_count: int) -> HotPath:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tenants = catalog(TENANTS)
    naming = Naming("tenant-tiers", "bench")
    items = {
        tenant.id: registry_item(
            tenants,
            tenant,
            naming,
            buckets=naming.buckets("123456789012", "us-east-1"),
            api_key_id=f"key-{tenant.id}",
            api_key_value=f"value-of-{tenant.id}-0123456789",
        )
        for tenant in tenants.tenants.values()
    }
    jwks = InMemoryJwks(private_key.public_key())
    registry = InMemoryRegistry(items)
    settings = AuthorizerSettings(
        issuer=ISSUER, app_client_id=APP_CLIENT_ID, jwks_url=JWKS_URL, registry_table=naming.registry_table
    )
    authorizer = Authorizer.from_settings(
        settings, jwks_fetcher=jwks, dynamodb_client_factory=lambda: registry
    )

    now = int(time.time())
    tenant_ids = list(tenants.tenants)
    # Warm-up: one token per tenant fills the key set and the registry cache.
    for serial, tenant_id in enumerate(tenant_ids):
        _expect_allow(authorizer.handle(event(id_token(private_key, tenant_id, serial, now))))
    fetches, reads = jwks.fetches, registry.reads

    tokens = [
        id_token(private_key, tenant_ids[serial % len(tenant_ids)], len(tenant_ids) + serial, now)
        for serial in range(token_count)
    ]
    events = [event(token) for token in tokens]
    repeated_event = event(tokens[0])
    pyjwt_decode = pyjwt_decoder(private_key.public_key())
    distinct = Timings("warm, distinct tokens")
    repeated = Timings("warm, repeated token")
    pyjwt = Timings("PyJWT decode_complete")
    # Interleaved rounds, so that drift on a shared machine weighs on every path alike.
    chunk = -(-token_count // ROUNDS)
    for start in range(0, token_count, chunk):
        distinct.run(authorizer.handle, events[start : start + chunk])
        pyjwt.run(pyjwt_decode, tokens[start : start + chunk])
        repeated.run(authorizer.handle, [repeated_event] * chunk)
    for response in map(authorizer.handle, events[:10]):
        _expect_allow(response)
    return HotPath(
        distinct=distinct.latencies(),
        repeated=repeated.latencies(),
        pyjwt=pyjwt.latencies(),
        jwks_fetches=jwks.fetches - fetches,
        registry_reads=registry.reads - reads,
        tenants=len(tenant_ids),
    )


def _expect_allow(response: Mapping[str, Any]) -> None:
    effect = response["policyDocument"]["Statement"][0]["Effect"]
    if effect != "Allow" or not response.get("usageIdentifierKey"):
        raise SystemExit(
            f"the authorizer did not allow a valid token (effect {effect}): the benchmark is broken"
        )


# Import times, each in a fresh interpreter.

_IMPORT_PROBE: Final = (
    "import time\n{setup}t = time.perf_counter()\nimport {modules}\nprint(time.perf_counter() - t)"
)

DEFERRED_IMPORTS: Final = {
    # What each handler imports on its first request rather than at import (see their sources).
    "handlers.authorizer": (
        "aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event",
        "boto3",
        "botocore.config",
    ),
    "handlers.tenant_api": ("boto3", "botocore.config"),
}


def import_ms(modules: Sequence[str], *, after: str | None = None, compiled: bool = True) -> float:
    """Time to import ``modules`` in a fresh interpreter, once ``after`` is imported (untimed).

    ``compiled=False`` starts with no bytecode cache at all, so every module is compiled from source.
    """
    with tempfile.TemporaryDirectory(prefix="pycache-") as cache:
        env = {**os.environ}
        if compiled:
            env.pop("PYTHONPYCACHEPREFIX", None)
        else:
            env["PYTHONPYCACHEPREFIX"] = cache
        probe = _IMPORT_PROBE.format(setup=f"import {after}\n" if after else "", modules=", ".join(modules))
        completed = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO_ROOT, env=env
        )
    return float(completed.stdout.strip()) * 1000


def import_breakdown(module: str, top: int) -> list[tuple[float, str]]:
    """What importing ``module`` spends its time in: self time (ms) per top-level package, largest first.

    From ``-X importtime`` ("import time: self [us] | cumulative | package", children before their
    parent, nested by indentation): the lines of ``module``'s own import, grouped by top-level name.
    """
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    lines: list[tuple[int, int, str]] = []
    for line in completed.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            name = parts[2].rstrip()
            lines.append((int(parts[0]), (len(name) - len(name.lstrip()) - 1) // 2, name.strip()))
    # The interpreter's own start-up imports come first, at depth 0, before the first line of the
    # handlers package: everything from there on is the handler's.
    start = next(index for index, (_, _, name) in enumerate(lines) if name.split(".")[0] == "handlers")
    while start > 0 and lines[start - 1][1] > 0:
        start -= 1
    by_package: dict[str, int] = {}
    for self_us, _, name in lines[start:]:
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0) + self_us
    return sorted(((self_us / 1000, package) for package, self_us in by_package.items()), reverse=True)[:top]


@dataclass(frozen=True)
class ImportTime:
    module: str
    median_ms: float
    runs: int
    uncompiled_ms: float
    deferred: tuple[str, ...]
    deferred_ms: float
    """Median time of the imports the handler makes on its first request."""
    breakdown: list[tuple[float, str]]


def import_times(runs: int, top: int) -> list[ImportTime]:
    results = []
    for module in HANDLER_MODULES:
        deferred = DEFERRED_IMPORTS[module]
        results.append(
            ImportTime(
                module=module,
                median_ms=statistics.median(import_ms([module]) for _ in range(runs)),
                runs=runs,
                uncompiled_ms=import_ms([module], compiled=False),
                deferred=deferred,
                deferred_ms=statistics.median(import_ms(deferred, after=module) for _ in range(runs)),
                breakdown=import_breakdown(module, top),
            )
        )
    return results


def report(hot: HotPath, imports: Iterable[ImportTime]) -> bool:
    """Print the figures and the targets; True when the hot path touched neither key set nor registry."""
    print(f"authorizer hot path ({hot.tenants} tenants cached; RSA 2048; PyJWT {jwt.__version__})")
    for latencies in (hot.distinct, hot.repeated, hot.pyjwt):
        print(latencies.line())
    untouched = hot.jwks_fetches == 0 and hot.registry_reads == 0
    print(
        f"  after warm-up: {hot.jwks_fetches} JWKS fetches, {hot.registry_reads} registry reads"
        + ("" if untouched else "  <- the measured path was not warm: figures invalid")
    )
    imports = list(imports)
    print("import in a fresh interpreter (median, .pyc present; and with no .pyc at all)")
    for result in imports:
        print(
            f"  {result.module:<22} {result.median_ms:7.1f} ms (median of {result.runs})"
            f"   no .pyc: {result.uncompiled_ms:7.1f} ms"
        )
        print(f"      then on the first request: {result.deferred_ms:6.1f} ms ({', '.join(result.deferred)})")
        print(
            "      self time by package: " + ", ".join(f"{name} {ms:.0f} ms" for ms, name in result.breakdown)
        )
    ratio = hot.distinct.p50_us / hot.pyjwt.p50_us
    checks = [
        (f"warm p50 {ratio:.2f}x PyJWT decode <= {TARGET_WARM_RATIO}x", ratio <= TARGET_WARM_RATIO),
        (
            f"repeated token p50 {hot.repeated.p50_us:.1f} us <= {TARGET_REPEATED_US} us",
            hot.repeated.p50_us <= TARGET_REPEATED_US,
        ),
        *(
            (
                f"{result.module} import {result.median_ms:.0f} ms <= {TARGET_IMPORT_MS:.0f} ms",
                result.median_ms <= TARGET_IMPORT_MS,
            )
            for result in imports
        ),
    ]
    print("targets:")
    for text, holds in checks:
        print(f"  {'ok  ' if holds else 'MISS'} {text}")
    print(f"authorizer p50 {hot.distinct.p50_us:.1f} us = {ratio:.2f}x PyJWT decode")
    return untouched


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--tokens", type=positive, default=5000, help="distinct tokens measured (default 5000)"
    )
    parser.add_argument(
        "--import-runs", type=positive, default=7, help="fresh interpreters per module (default 7)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 tokens, 1 import run")
    args = parser.parse_args(argv)
    tokens, import_runs = (200, 1) if args.quick else (args.tokens, args.import_runs)
    hot = hot_path(tokens)
    return 0 if report(hot, import_times(import_runs, top=6)) else 1


if __name__ == "__main__":
    sys.exit(cli())
