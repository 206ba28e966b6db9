"""How big the Pulumi state of a stack gets, and how much a first deploy writes with a file or S3 backend.

    python benchmarks/state_size.py [--tenants 10000]

Runs the program under the recording mocks (tests/infra/harness.py) on the scale benchmark's
tier file (every tenth tenant silo) and builds, for every resource, the entry Pulumi's
checkpoint holds for it: URN, id, type, parent, provider reference, dependencies, property
dependencies, options, timestamps, inputs and outputs, with secrets as the ciphertext objects
the passphrase secrets provider writes. The mocks echo inputs and add ids and ARNs; the
outputs the real provider adds on top (creation dates, defaults read back, the association's
key value) are added from ``PROVIDER_OUTPUTS``, so the figures are an estimate, on the low side.

With the file and S3 backends Pulumi writes the whole checkpoint before and after every step
(pulumi/pulumi#10668, #15218): a first deploy of N resources writes about N checkpoints of
half the final size on average, twice: N x final size in all. The README's Deploy section
quotes the figures for 10,000 tenants.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.arguments import positive
from benchmarks.program_scale import STACK, write_tier_file
from tests.infra.harness import (
    API_KEY,
    PROJECT,
    TABLE,
    USAGE_PLAN_KEY,
    RecordedResource,
    run_program,
)

SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
ARCHIVE_SIGNATURE = "0def7320c3a5731c473e5ecbe6d01bc7"
SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
TIMESTAMP = "2026-11-30T23:59:59.123456789Z"
PROVIDER_REFERENCE = (
    f"urn:pulumi:{STACK}::{PROJECT}::pulumi:providers:aws::default_7_51_1"
    "::0b5c7a4e-59d6-4c8f-9c4e-2a7d1f0e8b3c"
)

PROVIDER_OUTPUTS: dict[str, dict[str, Any]] = {
    API_KEY: {
        "createdDate": "2026-11-30T23:59:59Z",
        "lastUpdatedDate": "2026-11-30T23:59:59Z",
        "description": "Managed by Pulumi",
        "customerId": "",
        "tags": None,
        "tagsAll": {},
    },
    USAGE_PLAN_KEY: {"name": "tenant-tiers-bench-t00000", "keyType": "API_KEY"},
    TABLE: {
        "streamArn": "",
        "streamLabel": "",
        "streamEnabled": False,
        "streamViewType": "",
        "readCapacity": 0,
        "writeCapacity": 0,
        "tableClass": "STANDARD",
        "ttl": {"attributeName": "", "enabled": False},
        "globalSecondaryIndexes": [],
        "localSecondaryIndexes": [],
        "replicas": [],
        "onDemandThroughput": {"maxReadRequestUnits": 0, "maxWriteRequestUnits": 0},
        "warmThroughput": {"readUnitsPerSecond": 12000, "writeUnitsPerSecond": 4000},
        "tags": None,
        "tagsAll": {},
    },
}
"""What the provider's Create returns beyond the inputs and the ARN that the mocks already echo."""


@dataclass(frozen=True)
class StateSize:
    resources: int
    compact_bytes: int
    indented_bytes: int
    """As the file backend writes it (JSON indented by four spaces)."""
    by_type: Mapping[str, tuple[int, int]]
    """Type -> (count, compact bytes)."""

    @property
    def first_deploy_written_bytes(self) -> int:
        """Bytes a file or S3 backend writes while creating every resource: a checkpoint before and after each
        step, growing from empty to the final size."""
        return self.resources * self.indented_bytes


def ciphertext(value: Any) -> dict[str, str]:
    """A secret as the passphrase provider stores it: AES-GCM over the JSON of the value, nonce, tag."""
    plaintext = json.dumps(value).encode()
    nonce = base64.b64encode(b"\0" * 12).decode()
    sealed = base64.b64encode(b"\0" * (len(plaintext) + 16)).decode()
    return {SIGNATURE_KEY: SECRET_SIGNATURE, "ciphertext": f"v1:{nonce}:{sealed}"}


def plain(value: Any) -> Any:
    if isinstance(value, pulumi.FileArchive):
        return {SIGNATURE_KEY: ARCHIVE_SIGNATURE, "hash": "0" * 64, "path": value.path}
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def properties(values: Mapping[str, Any], secret: frozenset[str]) -> dict[str, Any]:
    return {key: ciphertext(plain(value)) if key in secret else plain(value) for key, value in values.items()}


def checkpoint_entry(resource: RecordedResource) -> dict[str, Any]:
    secret = resource.secret_inputs | resource.additional_secret_outputs
    outputs = {**resource.outputs, **PROVIDER_OUTPUTS.get(resource.type, {})}
    entry: dict[str, Any] = {
        "urn": resource.urn,
        "custom": resource.custom,
        "type": resource.type,
        "parent": resource.parent,
    }
    if resource.custom:
        entry |= {
            "id": resource.id,
            "inputs": properties(resource.inputs, resource.secret_inputs),
            "outputs": properties(outputs, secret),
            "provider": PROVIDER_REFERENCE,
            "dependencies": list(resource.dependencies),
            "propertyDependencies": {
                key: sorted(urns) for key, urns in resource.property_dependencies.items()
            },
            "additionalSecretOutputs": sorted(resource.additional_secret_outputs),
            "created": TIMESTAMP,
            "modified": TIMESTAMP,
        }
        for flag, on in (
            ("protect", resource.protect),
            ("retainOnDelete", resource.retain_on_delete),
            ("deleteBeforeReplace", resource.delete_before_replace),
        ):
            if on:
                entry[flag] = True
    return entry


def measure(tenants: int) -> StateSize:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    with tempfile.TemporaryDirectory() as directory:
        run = run_program(write_tier_file(Path(directory) / f"{STACK}.yaml", tenants), stack=STACK)
    entries = [checkpoint_entry(resource) for resource in run.resources]
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for resource, entry in zip(run.resources, entries, strict=True):
        by_type[resource.type][0] += 1
        by_type[resource.type][1] += len(json.dumps(entry, separators=(",", ":")))
    document = {"version": 3, "checkpoint": {"latest": {"resources": entries}}}
    return StateSize(
        resources=len(entries),
        compact_bytes=len(json.dumps(document, separators=(",", ":"))),
        indented_bytes=len(json.dumps(document, indent=4)),
        by_type={type_token: (count, size) for type_token, (count, size) in by_type.items()},
    )


def report(size: StateSize, tenants: int) -> str:
    lines = [
        f"state of a {tenants:,}-tenant stack (every tenth silo), estimated from recorded inputs and outputs",
        f"  resources in state     {size.resources:>12,}",
        f"  checkpoint, compact    {size.compact_bytes / 1e6:>12.1f} MB",
        f"  checkpoint, as written {size.indented_bytes / 1e6:>12.1f} MB  (file/S3 backend: indented JSON)",
        f"  per resource           {size.indented_bytes / size.resources:>12,.0f} bytes on average",
        f"  first deploy writes    {size.first_deploy_written_bytes / 1e9:>12.1f} GB  (file/S3 backend)",
        "  by type (count, average compact bytes):",
    ]
    for type_token, (count, total) in sorted(size.by_type.items(), key=lambda item: -item[1][1]):
        lines.append(f"    {type_token:<45} {count:>7,} {total / count:>8,.0f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=positive, default=10_000, help="tenants in the tier file (10000)")
    tenants = parser.parse_args().tenants
    print(report(measure(tenants), tenants))


if __name__ == "__main__":
    main()
