"""What the local stack's IAM enforcement adds to each DynamoDB call a tenant session makes.

Starts the local stack's emulator (moto behind the IAM enforcer) provisioned from a one-tenant catalog,
and next to it moto's own server (``ThreadedMotoServer``, no enforcer) on the same in-process moto state.
One tenant session (assumed through the enforcer, as the tenant API does) then sends the tenant API's
calls to both endpoints in alternating rounds over keep-alive connections; the difference of the medians
is what the enforcer adds: buffering the body, mapping the call, evaluating the data policy.

    python benchmarks/local_iam.py [--requests 500]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from moto.server import ThreadedMotoServer

from benchmarks.arguments import positive
from handlers.contract import DATA_PARTITION_KEY, DATA_SORT_KEY, TENANT_SESSION_TAG
from local.emulator import Emulator
from local.provision import AwsClients, provision
from local.settings import HOST, NAMING
from tiers.model import Catalog, Isolation, Quota, QuotaPeriod, Tenant, Throttle, Tier

TENANT = "bench"
CATALOG = Catalog(
    tiers={"basic": Tier("basic", Isolation.POOLED, Throttle(10, 20), Quota(1000, QuotaPeriod.DAY))},
    tenants={TENANT: Tenant(TENANT, "basic", "Bench")},
)
WARM_UP = 30


def _calls(table: str) -> dict[str, Callable[[Any], object]]:
    """The tenant API's DynamoDB calls (handlers.tenant_data), on the benchmark tenant's partition."""
    key = {DATA_PARTITION_KEY: {"S": TENANT}, DATA_SORT_KEY: {"S": "item#bench"}}
    return {
        "GetItem": lambda client: client.get_item(TableName=table, Key=key, ConsistentRead=True),
        "PutItem": lambda client: client.put_item(TableName=table, Item={**key, "doc": {"S": '{"v": 1}'}}),
        "Query": lambda client: client.query(
            TableName=table,
            KeyConditionExpression="#pk = :tenant AND begins_with(#sk, :items)",
            ExpressionAttributeNames={"#pk": DATA_PARTITION_KEY, "#sk": DATA_SORT_KEY},
            ExpressionAttributeValues={":tenant": {"S": TENANT}, ":items": {"S": "item#"}},
            Limit=25,
        ),
        "UpdateItem": lambda client: client.update_item(
            TableName=table,
            Key={DATA_PARTITION_KEY: {"S": TENANT}, DATA_SORT_KEY: {"S": "counter"}},
            UpdateExpression="ADD #count :one",
            ExpressionAttributeNames={"#count": "count"},
            ExpressionAttributeValues={":one": {"N": "1"}},
        ),
    }


def _timed(call: Callable[[Any], object], client: Any) -> float:
    started = time.perf_counter()
    call(client)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--requests", type=positive, default=500, help="measured calls per operation and endpoint"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    emulator = Emulator(HOST)
    enforced_endpoint = emulator.start()
    plain = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    plain.start()
    plain_host, plain_port = plain.get_host_and_port()
    try:
        admin = AwsClients(enforced_endpoint)
        provisioned = provision(CATALOG, NAMING, admin)
        emulator.enforcer.stack_credentials_act_as(provisioned.tenant_api_role_arn, "bench")
        credentials = admin.client("sts").assume_role(
            RoleArn=provisioned.tenant_data_role_arn,
            RoleSessionName=f"tenant-{TENANT}",
            Tags=[{"Key": TENANT_SESSION_TAG, "Value": TENANT}],
        )["Credentials"]
        session = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        clients = {
            "moto": admin.session.client(
                "dynamodb", endpoint_url=f"http://{plain_host}:{plain_port}", **session
            ),
            "moto + IAM": admin.session.client("dynamodb", endpoint_url=enforced_endpoint, **session),
        }
        print(f"{'call':<12}{'moto p50':>12}{'moto + IAM p50':>18}{'added p50':>14}")
        added_medians = []
        for name, call in _calls(provisioned.pooled_table).items():
            samples: dict[str, list[float]] = {endpoint: [] for endpoint in clients}
            for index in range(args.requests + WARM_UP):
                # Alternate which endpoint goes first, so neither always runs on a warmer cache.
                order = list(clients.items()) if index % 2 else list(reversed(clients.items()))
                for endpoint, client in order:
                    elapsed = _timed(call, client)
                    if index >= WARM_UP:
                        samples[endpoint].append(elapsed)
            plain_p50, enforced_p50 = (statistics.median(samples[endpoint]) * 1000 for endpoint in clients)
            added_medians.append(enforced_p50 - plain_p50)
            print(
                f"{name:<12}{plain_p50:>9.3f} ms{enforced_p50:>15.3f} ms{enforced_p50 - plain_p50:>11.3f} ms"
            )
        print(f"IAM enforcement adds {statistics.median(added_medians):.3f} ms per DynamoDB call (median)")
    finally:
        plain.stop()
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
