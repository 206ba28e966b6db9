"""`python -m tiers migrate` killed with SIGKILL at many points, then run again, against a moto server.

pooled → silo → pooled with 2,000 items, a counter and 40 files: each direction is killed right after the
fence, during the copy, between the rows and the files, after the switch and during the clean-up (at the
line announcing each, plus a seeded random delay), and once at a random moment; after every kill the
tenant is served from a complete copy, and in the end every row and file is present exactly once, in the
right table and bucket, identical to the start.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from handlers.contract import PlacementField
from tests.handlers.tenant_fixtures import BUCKETS, NAMING, bucket_keys, create_bucket, create_data_table
from tests.tiers.stack_fixtures import create_stack_tables, partition, placement_of, rows_of, seed

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
SEED = 20261130
ITEMS = 2000
FILES = 40
RUN_TIMEOUT_SECONDS = 120


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Operator:
    """Runs `python -m tiers migrate` as a separate process against the moto server."""

    def __init__(self, endpoint: str, outputs: Path) -> None:
        self.outputs = outputs
        self.env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("AWS_PROFILE", None)
        self.env.pop("AWS_SESSION_TOKEN", None)

    def command(self, to: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tiers",
            "migrate",
            "acme",
            "--to",
            to,
            "--stack-outputs",
            str(self.outputs),
            "--region",
            REGION,
            "--drain-seconds",
            "0",
        ]

    def run(self, to: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(to),
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )

    def kill_at(self, to: str, marker: str | None, delay: float) -> str:
        """Start a run; SIGKILL it ``delay`` seconds after a line containing ``marker`` (or after start)."""
        process = subprocess.Popen(
            self.command(to),
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdout is not None
        seen: list[str] = []
        try:
            if marker is not None:
                for line in process.stdout:
                    seen.append(line)
                    if marker in line:
                        break
                else:
                    # That step was done by an earlier run: this one ended without it.
                    return "".join(seen)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()
        return "".join(seen)


def served_rows(admin: Any) -> list[dict[str, Any]]:
    """acme's rows in the table the tenant API reads right now (placement item, else the registry)."""
    placement = placement_of(admin, "acme")
    table = NAMING.pooled_table if placement is None else placement[PlacementField.TABLE]["S"]
    return partition(admin, table, "acme")


def files_of(s3: Any, bucket: str, tenant_id: str) -> dict[str, bytes]:
    """``tenant_id``'s current files in ``bucket``, by name."""
    prefix = f"{tenant_id}/"
    return {
        key.removeprefix(prefix): s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        for key in bucket_keys(bucket, s3)
        if key.startswith(prefix)
    }


def served_files(admin: Any, s3: Any) -> dict[str, bytes]:
    """acme's files in the bucket the tenant API reads right now (placement item, else the registry)."""
    placement = placement_of(admin, "acme")
    bucket = BUCKETS.pooled if placement is None else placement[PlacementField.BUCKET]["S"]
    return files_of(s3, bucket, "acme")


def test_killed_moves_resume_to_identical_data(moto_endpoint: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    admin = session.client("dynamodb", endpoint_url=moto_endpoint)
    s3 = session.client("s3", endpoint_url=moto_endpoint)
    # GIVEN the stack's tables and buckets, acme's silo table and bucket, 2,000 items, a counter and 40
    # files of acme, and a neighbour whose id acme's is a prefix of
    create_stack_tables(admin)
    silo = NAMING.silo_table("acme")
    create_data_table(silo, admin)
    silo_bucket = BUCKETS.silo("acme")
    for bucket in (BUCKETS.pooled, silo_bucket):
        create_bucket(bucket, s3)
    original = sorted(rows_of("acme", ITEMS, counter=4242), key=lambda row: row["sk"]["S"])
    neighbour = sorted(rows_of("acme-corp", 40, counter=7), key=lambda row: row["sk"]["S"])
    seed(admin, NAMING.pooled_table, original + neighbour)
    original_files = {f"file-{n:03d}.bin": rng.randbytes(rng.randrange(0, 5000)) for n in range(FILES)}
    neighbour_files = {"file-000.bin": b"acme-corp's", "other.txt": b"acme-corp's other"}
    for tenant_id, files in (("acme", original_files), ("acme-corp", neighbour_files)):
        for name, content in files.items():
            s3.put_object(Bucket=BUCKETS.pooled, Key=f"{tenant_id}/{name}", Body=content)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "registryTable": NAMING.registry_table,
                "placementTable": NAMING.placement_table,
                "pooledTable": NAMING.pooled_table,
                "siloTablePrefix": NAMING.silo_table_prefix,
                "pooledBucket": BUCKETS.pooled,
                "siloBucketPrefix": BUCKETS.silo_prefix,
            }
        )
    )
    operator = Operator(moto_endpoint, outputs)
    kills: list[str] = []

    moves = (
        ("silo", NAMING.pooled_table, silo, BUCKETS.pooled, silo_bucket),
        ("pooled", silo, NAMING.pooled_table, silo_bucket, BUCKETS.pooled),
    )
    for to, source, target, source_bucket, target_bucket in moves:
        # WHEN the move is killed at each of its steps, and once at a random moment
        markers = [
            "fenced the writes",
            "copied 1,000 rows",
            "copied and verified 2,001 rows",
            "switched:",
            "  deleted ",
            None,
        ]
        for marker in markers:
            delay = rng.uniform(0.0, 0.3) if marker is not None else rng.uniform(0.3, 2.5)
            operator.kill_at(to, marker, delay)
            kills.append(f"{to}: {marker} +{delay:.2f}s")
            # THEN after every kill the tenant is served from a complete copy
            assert served_rows(admin) == original, kills[-1]
            assert served_files(admin, s3) == original_files, kills[-1]

        # WHEN it runs again, uninterrupted THEN it completes
        finished = operator.run(to)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        # AND every row is in the target exactly as it started, none left in the source
        assert partition(admin, target, "acme") == original, kills
        assert partition(admin, source, "acme") == []
        assert files_of(s3, target_bucket, "acme") == original_files, kills
        assert files_of(s3, source_bucket, "acme") == {}
        placement = placement_of(admin, "acme")
        assert placement[PlacementField.TABLE]["S"] == target
        assert PlacementField.CLEANUP not in placement
        # AND a second run says there is nothing to do
        again = operator.run(to)
        assert again.returncode == 0
        assert "nothing to do" in again.stdout

    # AND the neighbour in the pooled table was never touched
    assert partition(admin, NAMING.pooled_table, "acme-corp") == neighbour
    assert files_of(s3, BUCKETS.pooled, "acme-corp") == neighbour_files
    assert "Traceback" not in finished.stderr
