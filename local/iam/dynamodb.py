"""DynamoDB calls as the IAM authorization requests AWS evaluates for them.

``dynamodb_requests`` is pure: an operation and its parameters (which are also its JSON wire body) give
the requests, with ``dynamodb:LeadingKeys`` computed as AWS computes it (the partition key values the call
names). ``DynamoDBAuthorization`` is the enforcer's adapter: it reads the operation from ``X-Amz-Target``,
the parameters from the body, the tables' partition keys from the emulator, and answers a denial with the
error DynamoDB sends.

Anything it cannot map (an unknown operation, a key condition without an equality on the partition key,
PartiQL it cannot read, a malformed body) raises ``UnsupportedPolicyError``: the enforcer then refuses the
call rather than guess.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local.iam.policy import ContextValue, Request, UnsupportedPolicyError
from local.iam.wire import Answer, Caller, SignedCall, StackClients

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
ACCESS_DENIED_TYPE = "com.amazonaws.dynamodb.v20120810#AccessDeniedException"
EXPIRED_TOKEN_TYPE = "com.amazon.coral.service#ExpiredTokenException"
LEADING_KEYS = "dynamodb:LeadingKeys"
# The condition keys this mapper computes; a policy conditioned on another one is refused, not guessed at.
KNOWN_CONDITION_KEYS = frozenset({LEADING_KEYS.lower()})

PartitionKeyOf = Callable[[str, str | None], str]
"""(table name, index name or None) -> the attribute name of that table's or index's partition key."""

_ITEM_KEY_PARAMETER = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}
_TRANSACT_ACTIONS = {
    "Get": "GetItem",
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_TRANSACT_KEY_PARAMETER = {"Put": "Item"}
# Operations with no resource-level permission: IAM evaluates them on "*".
_ACCOUNT_OPERATIONS = frozenset({"ListTables", "DescribeLimits", "DescribeEndpoints", "ListBackups"})
_KEY_EQUALITY_RES = (
    re.compile(r"(?P<name>#?[A-Za-z0-9_.-]+)\s*=\s*(?P<value>:[A-Za-z0-9_]+)"),
    re.compile(r"(?P<value>:[A-Za-z0-9_]+)\s*=\s*(?P<name>#?[A-Za-z0-9_.-]+)"),
)
_PARTIQL_ACTIONS = {
    "SELECT": "PartiQLSelect",
    "INSERT": "PartiQLInsert",
    "UPDATE": "PartiQLUpdate",
    "DELETE": "PartiQLDelete",
}
_PARTIQL_TABLE_RE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"([^"]+)"', re.IGNORECASE)


def table_arn(region: str, account: str, table: str) -> str:
    """A table's ARN; ``table`` may already be one (DynamoDB accepts ARNs as table names)."""
    return table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"


def table_name(table: str) -> str:
    return table.rpartition(":table/")[2] if table.startswith("arn:") else table


def dynamodb_requests(
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition_key_of: PartitionKeyOf,
    principal_tags: Mapping[str, str],
) -> list[Request]:
    """The authorization requests of one DynamoDB call; all of them must be allowed for it to succeed."""
    try:
        return list(_requests(operation, params, region, account, partition_key_of, principal_tags))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        if isinstance(error, UnsupportedPolicyError):
            raise
        problem = f"DynamoDB {operation} parameters could not be read: {error!r}"
        raise UnsupportedPolicyError(problem) from error


def _requests(
    operation: str,
    params: Mapping[str, Any],
    region: str,
    account: str,
    partition_key_of: PartitionKeyOf,
    principal_tags: Mapping[str, str],
) -> Iterable[Request]:
    def request(action: str, table: str, leading_keys: list[str] | None, index: str | None = None) -> Request:
        context: dict[str, ContextValue] = {}
        if leading_keys is not None:
            context[LEADING_KEYS] = leading_keys
        resource = "*" if table == "*" else table_arn(region, account, table)
        if index is not None:
            resource = f"{resource}/index/{index}"
        return Request(
            action=f"dynamodb:{action}",
            resource=resource,
            principal_tags=principal_tags,
            context=context,
            known_keys=KNOWN_CONDITION_KEYS,
        )

    def leading_key(table: str, key: Mapping[str, Any], index: str | None = None) -> str:
        name = partition_key_of(table_name(table), index)
        if name not in key:
            raise UnsupportedPolicyError(f"the key names no value for the partition key {name!r}")
        return _string_value(key[name])

    if operation in _ITEM_KEY_PARAMETER:
        table = params["TableName"]
        yield request(operation, table, [leading_key(table, params[_ITEM_KEY_PARAMETER[operation]])])
    elif operation == "Query":
        table, index = params["TableName"], params.get("IndexName")
        partition_key = partition_key_of(table_name(table), index)
        yield request("Query", table, _query_leading_keys(params, partition_key), index)
    elif operation == "Scan":
        yield request("Scan", params["TableName"], None, params.get("IndexName"))
    elif operation in ("BatchGetItem", "BatchWriteItem"):
        for table, work in params["RequestItems"].items():
            keys = work["Keys"] if operation == "BatchGetItem" else [_write_request_key(w) for w in work]
            yield request(operation, table, sorted({leading_key(table, key) for key in keys}))
    elif operation in ("TransactGetItems", "TransactWriteItems"):
        for entry in params["TransactItems"]:
            ((kind, work),) = entry.items()
            if kind not in _TRANSACT_ACTIONS:
                raise UnsupportedPolicyError(f"{operation} entry {kind!r} is not understood")
            table = work["TableName"]
            key = work[_TRANSACT_KEY_PARAMETER.get(kind, "Key")]
            yield request(_TRANSACT_ACTIONS[kind], table, [leading_key(table, key)])
    elif operation in ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"):
        statements: list[Mapping[str, Any]] = (
            [params]
            if operation == "ExecuteStatement"
            else params["Statements" if operation == "BatchExecuteStatement" else "TransactStatements"]
        )
        for statement in statements:
            action, table = _partiql_action(statement["Statement"])
            yield request(action, table, None)
    elif operation in _ACCOUNT_OPERATIONS:
        yield request(operation, "*", None)
    elif isinstance(params.get("TableName"), str):
        # Table-level operations (DescribeTable, UpdateTable, DeleteTable, ...): the table, no item keys.
        yield request(operation, params["TableName"], None)
    else:
        raise UnsupportedPolicyError(f"DynamoDB operation {operation} is not mapped to IAM requests")


def _write_request_key(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The key of a BatchWriteItem entry: {"PutRequest": {"Item": ...}} or {"DeleteRequest": {"Key": ...}}."""
    if "PutRequest" in entry:
        item: Mapping[str, Any] = entry["PutRequest"]["Item"]
        return item
    key: Mapping[str, Any] = entry["DeleteRequest"]["Key"]
    return key


def _string_value(attribute: Mapping[str, Any]) -> str:
    """The value of a typed attribute ({"S": "acme"}) as text, as IAM compares it."""
    (value,) = attribute.values()
    if not isinstance(value, str):
        raise UnsupportedPolicyError(f"a key attribute holds {type(value).__name__}, not a scalar")
    return value


def _query_leading_keys(params: Mapping[str, Any], partition_key: str) -> list[str]:
    """The partition key values a query names: its key condition's equality on the partition key."""
    if "KeyConditions" in params:
        condition = params["KeyConditions"][partition_key]
        if condition["ComparisonOperator"] != "EQ":
            raise UnsupportedPolicyError("the query's KeyConditions has no EQ on the partition key")
        return [_string_value(value) for value in condition["AttributeValueList"]]
    expression = params["KeyConditionExpression"]
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    found = {
        _string_value(values[match.group("value")])
        for pattern in _KEY_EQUALITY_RES
        for match in pattern.finditer(expression)
        if names.get(match.group("name"), match.group("name")) == partition_key
    }
    if not found:
        raise UnsupportedPolicyError("the query's key condition has no equality on the partition key")
    return sorted(found)


def _partiql_action(statement: str) -> tuple[str, str]:
    words = statement.split(None, 1)
    verb = words[0].upper() if words else ""
    table = _PARTIQL_TABLE_RE.search(statement)
    if verb not in _PARTIQL_ACTIONS or table is None:
        raise UnsupportedPolicyError(f"PartiQL statement {statement[:80]!r} is not understood")
    return _PARTIQL_ACTIONS[verb], table.group(1)


# ---------------------------------------------------------------------------------------------------------
# On the wire


@dataclass(frozen=True)
class TableKeys:
    partition_key: str
    index_partition_keys: Mapping[str, str]


def operation_of(call: SignedCall) -> str:
    target = call.headers.get("x-amz-target", "")
    if not target.startswith(TARGET_PREFIX):
        raise UnsupportedPolicyError(f"X-Amz-Target {target[:60]!r} is not a DynamoDB 2012-08-10 operation")
    return target[len(TARGET_PREFIX) :]


def parameters_of(call: SignedCall) -> Mapping[str, Any]:
    try:
        params = json.loads(call.body or b"{}")
    except (ValueError, RecursionError) as error:
        raise UnsupportedPolicyError("the request body is not JSON this emulation can read") from error
    if not isinstance(params, dict):
        raise UnsupportedPolicyError("the request body is not a JSON object")
    return params


class DynamoDBAuthorization:
    """The enforcer's DynamoDB adapter: requests from the wire, key schemas from the emulator, errors."""

    service = SERVICE
    needs_body = True

    def __init__(self, clients: StackClients) -> None:
        self._clients = clients
        self._keys: dict[tuple[str, str], TableKeys] = {}
        self._lock = threading.Lock()

    def requests(self, call: SignedCall, caller: Caller) -> list[Request]:
        def partition_key_of(table: str, index: str | None) -> str:
            keys = self._table_keys(call.region, table)
            if index is None:
                return keys.partition_key
            if index not in keys.index_partition_keys:
                raise UnsupportedPolicyError(f"table {table} has no index {index}")
            return keys.index_partition_keys[index]

        return dynamodb_requests(
            operation_of(call),
            parameters_of(call),
            region=call.region,
            account=caller.account,
            partition_key_of=partition_key_of,
            principal_tags=caller.tags,
        )

    def observe(self, call: SignedCall) -> None:
        """Any caller's call: a table created, changed or deleted may have another key schema now."""
        if call.headers.get("x-amz-target", "").endswith(("CreateTable", "DeleteTable", "UpdateTable")):
            with self._lock:
                self._keys.clear()

    def denied(self, message: str) -> Answer:
        return _error(ACCESS_DENIED_TYPE, message)

    def token_expired(self) -> Answer:
        return _error(EXPIRED_TOKEN_TYPE, "The security token included in the request is expired")

    def _table_keys(self, region: str, table: str) -> TableKeys:
        with self._lock:
            cached = self._keys.get((region, table))
        if cached is not None:
            return cached
        client = self._clients(SERVICE, region)
        try:
            description = client.describe_table(TableName=table)["Table"]
        except ClientError as error:
            # IAM decides before the table is looked up: without a key schema, no leading key is known.
            code = error.response.get("Error", {}).get("Code", "")
            problem = f"the partition key of table {table!r} is unknown ({code} from DescribeTable)"
            raise UnsupportedPolicyError(problem) from error
        indexes = [
            *description.get("GlobalSecondaryIndexes", []),
            *description.get("LocalSecondaryIndexes", []),
        ]
        keys = TableKeys(
            partition_key=_hash_key(description["KeySchema"]),
            index_partition_keys={index["IndexName"]: _hash_key(index["KeySchema"]) for index in indexes},
        )
        with self._lock:
            self._keys[(region, table)] = keys
        return keys


def _hash_key(key_schema: Iterable[Mapping[str, str]]) -> str:
    return next(element["AttributeName"] for element in key_schema if element["KeyType"] == "HASH")


def _error(error_type: str, message: str) -> Answer:
    """DynamoDB's error shape: HTTP 400 and a JSON body botocore reads the code from."""
    body = json.dumps({"__type": error_type, "message": message}).encode()
    return Answer(400, [("Content-Type", "application/x-amz-json-1.0")], body)
