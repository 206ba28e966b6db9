"""A small IAM policy evaluator, enough to judge the tenant data role's documents (moto enforces no IAM).

Covered, following the IAM policy evaluation logic for a single policy:

- an explicit ``Deny`` wins over any ``Allow``; without a matching ``Allow`` the request is denied;
- ``Action`` (case-insensitive) and ``Resource`` (case-sensitive) with ``*`` and ``?`` wildcards; a wildcard
  may span ``:`` and ``/`` (IAM's resource matching is no stricter than that for the ARNs used here);
- ``Principal`` (``"*"``, ``{"AWS": ...}``, ``{"Service": ...}``) for trust policies;
- policy variables ``${aws:PrincipalTag/key}`` and any ``${context:key}``, plus ``${*}``, ``${?}``,
  ``${$}``; a substituted value is literal (its ``*`` is not a wildcard) and a variable that cannot be
  resolved matches nothing;
- condition operators ``StringEquals``, ``StringLike``, ``Null``, and the set forms
  ``ForAllValues:StringEquals`` / ``ForAnyValue:StringEquals`` (``ForAllValues`` is true when the key is
  absent or empty, ``ForAnyValue`` false); operators AND together, keys AND together, values OR together.

Anything else (``NotAction``, ``NotResource``, another operator) raises ``UnsupportedPolicyError`` rather
than being guessed at, so a policy change the evaluator does not understand fails the tests loudly.

``dynamodb_requests`` turns a DynamoDB API call (its parameters, which are also its JSON wire body) into
the authorization requests AWS evaluates for it, with ``dynamodb:LeadingKeys`` as AWS computes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ContextValue = str | Sequence[str]


class UnsupportedPolicyError(ValueError):
    """The policy uses an element or operator this evaluator does not implement."""


class Decision(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One authorization request: who asks for which action on which resource, with which context."""

    action: str
    resource: str
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal: str | None = None

    def value(self, key: str) -> ContextValue | None:
        """A condition key's value (keys are case-insensitive), principal tags included."""
        wanted = key.lower()
        tag_prefix = "aws:principaltag/"
        if wanted.startswith(tag_prefix):
            tag = key[len(tag_prefix) :]
            return self.principal_tags.get(tag)
        for name, value in self.context.items():
            if name.lower() == wanted:
                return value
        return None


def evaluate(policy: Mapping[str, Any], request: Request) -> Decision:
    decision = Decision.IMPLICIT_DENY
    for statement in _statements(policy):
        if not _applies(statement, request):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return Decision.EXPLICIT_DENY
        if effect == "Allow":
            decision = Decision.ALLOW
        else:
            raise UnsupportedPolicyError(f"statement effect {effect!r} is neither Allow nor Deny")
    return decision


def is_allowed(policy: Mapping[str, Any], request: Request) -> bool:
    return evaluate(policy, request) is Decision.ALLOW


def all_allowed(policy: Mapping[str, Any], requests: Sequence[Request]) -> bool:
    """True when every request is allowed (an API call needing several authorizations)."""
    return bool(requests) and all(is_allowed(policy, request) for request in requests)


def _statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, Mapping) else list(statements)


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(statement)
    if unsupported:
        raise UnsupportedPolicyError(f"statement uses {', '.join(sorted(unsupported))}")
    if "Principal" in statement and not _principal_matches(statement["Principal"], request.principal):
        return False
    actions = _as_list(statement.get("Action", []))
    if not any(_wildcard_match(pattern, request.action, ignore_case=True) for pattern in actions):
        return False
    if "Resource" in statement:
        resources = _as_list(statement["Resource"])
        if not any(_resource_matches(pattern, request) for pattern in resources):
            return False
    return _conditions_hold(statement.get("Condition", {}), request)


def _principal_matches(principal: Any, caller: str | None) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicyError(f"principal {principal!r} is not '*' or a mapping")
    names = [name for kind in ("AWS", "Service") for name in _as_list(principal.get(kind, []))]
    return caller is not None and any(name in ("*", caller) for name in names)


# ---------------------------------------------------------------------------------------------------------
# Wildcards and policy variables

_VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_ESCAPES = {"*": "*", "?": "?", "$": "$"}


def _wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(_glob_regex(pattern), value, flags) is not None


def _substituted_pattern(pattern: str, request: Request) -> str | None:
    """A regex for ``pattern`` with variables replaced by their (literal) values; None if one is unknown."""
    parts: list[str] = []
    position = 0
    for match in _VARIABLE_RE.finditer(pattern):
        parts.append(_glob_regex(pattern[position : match.start()]))
        name = match.group(1)
        if name in _LITERAL_ESCAPES:
            parts.append(re.escape(_LITERAL_ESCAPES[name]))
        else:
            value = request.value(name)
            if not isinstance(value, str):
                return None
            parts.append(re.escape(value))
        position = match.end()
    parts.append(_glob_regex(pattern[position:]))
    return "".join(parts)


def _glob_regex(text: str) -> str:
    return "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in text)


def _resource_matches(pattern: str, request: Request) -> bool:
    regex = _substituted_pattern(pattern, request)
    return regex is not None and re.fullmatch(regex, request.resource, re.DOTALL) is not None


def _substituted_literal(value: str, request: Request) -> str | None:
    """A condition value with variables substituted (for exact comparisons); None if one is unknown."""
    result: list[str] = []
    position = 0
    for match in _VARIABLE_RE.finditer(value):
        result.append(value[position : match.start()])
        name = match.group(1)
        resolved = _LITERAL_ESCAPES.get(name) or request.value(name)
        if not isinstance(resolved, str):
            return None
        result.append(resolved)
        position = match.end()
    result.append(value[position:])
    return "".join(result)


# ---------------------------------------------------------------------------------------------------------
# Conditions


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], request: Request) -> bool:
    return all(
        _condition_holds(operator, key, _as_list(values), request)
        for operator, keys in conditions.items()
        for key, values in keys.items()
    )


def _condition_holds(operator: str, key: str, policy_values: list[Any], request: Request) -> bool:
    present = request.value(key)
    request_values = [] if present is None else _as_list(present)
    if operator == "Null":
        if len(policy_values) != 1 or str(policy_values[0]).lower() not in ("true", "false"):
            raise UnsupportedPolicyError(f"Null condition on {key} needs one value, true or false")
        key_is_absent = not request_values
        return key_is_absent == (str(policy_values[0]).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    match_one = _value_matcher(base, policy_values, request)
    if qualifier == "ForAllValues":
        return all(match_one(value) for value in request_values)
    if qualifier == "ForAnyValue":
        return any(match_one(value) for value in request_values)
    if qualifier:
        raise UnsupportedPolicyError(f"condition qualifier {qualifier!r} is not supported")
    return bool(request_values) and any(match_one(value) for value in request_values)


def _value_matcher(operator: str, policy_values: list[Any], request: Request) -> Any:
    if operator == "StringEquals":
        literals = [_substituted_literal(str(value), request) for value in policy_values]
        return lambda value: any(literal is not None and value == literal for literal in literals)
    if operator == "StringLike":
        patterns = [_substituted_pattern(str(value), request) for value in policy_values]
        return lambda value: any(
            pattern is not None and re.fullmatch(pattern, value, re.DOTALL) is not None
            for pattern in patterns
        )
    raise UnsupportedPolicyError(f"condition operator {operator!r} is not supported")


# ---------------------------------------------------------------------------------------------------------
# DynamoDB calls as authorization requests

_KEY_EQUALITY_RES = (
    re.compile(r"(?P<name>#?[A-Za-z0-9_]+)\s*=\s*(?P<value>:[A-Za-z0-9_]+)"),
    re.compile(r"(?P<value>:[A-Za-z0-9_]+)\s*=\s*(?P<name>#?[A-Za-z0-9_]+)"),
)
_ITEM_KEY_PARAMETER = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}
_PARTIQL_ACTIONS = {
    "SELECT": "PartiQLSelect",
    "INSERT": "PartiQLInsert",
    "UPDATE": "PartiQLUpdate",
    "DELETE": "PartiQLDelete",
}


def table_arn(region: str, account: str, table: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{table}"


def dynamodb_requests(
    operation: str,
    params: Mapping[str, Any],
    *,
    region: str,
    account: str,
    partition_key: str,
    principal_tags: Mapping[str, str],
) -> list[Request]:
    """The authorization requests of one DynamoDB call; all of them must be allowed for it to succeed."""

    def request(action: str, table: str, leading_keys: list[str] | None) -> Request:
        context: dict[str, ContextValue] = {}
        if leading_keys is not None:
            context["dynamodb:LeadingKeys"] = leading_keys
        return Request(
            action=f"dynamodb:{action}",
            resource=table_arn(region, account, table),
            principal_tags=principal_tags,
            context=context,
        )

    if operation in _ITEM_KEY_PARAMETER:
        key = params[_ITEM_KEY_PARAMETER[operation]]
        return [request(operation, params["TableName"], [_string_value(key[partition_key])])]
    if operation == "Query":
        return [request("Query", params["TableName"], [_query_leading_key(params, partition_key)])]
    if operation == "Scan":
        return [request("Scan", params["TableName"], None)]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        requests = []
        for table, work in params["RequestItems"].items():
            keys = (
                work["Keys"] if operation == "BatchGetItem" else [_write_request_key(entry) for entry in work]
            )
            requests.append(
                request(operation, table, sorted({_string_value(k[partition_key]) for k in keys}))
            )
        return requests
    if operation == "ExecuteStatement":
        statement = params["Statement"].strip()
        verb = statement.split(None, 1)[0].upper()
        table_match = re.search(r'(?:FROM|INTO|UPDATE)\s+"([^"]+)"', statement, re.IGNORECASE)
        if verb not in _PARTIQL_ACTIONS or table_match is None:
            raise UnsupportedPolicyError(f"PartiQL statement {statement!r} is not understood")
        return [request(_PARTIQL_ACTIONS[verb], table_match.group(1), None)]
    raise UnsupportedPolicyError(f"DynamoDB operation {operation} is not mapped to IAM requests")


def _write_request_key(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """The key of a BatchWriteItem entry: {"PutRequest": {"Item": ...}} or {"DeleteRequest": {"Key": ...}}."""
    if "PutRequest" in entry:
        item: Mapping[str, Any] = entry["PutRequest"]["Item"]
        return item
    key: Mapping[str, Any] = entry["DeleteRequest"]["Key"]
    return key


def _string_value(attribute: Mapping[str, Any]) -> str:
    (value,) = attribute.values()
    return str(value)


def _query_leading_key(params: Mapping[str, Any], partition_key: str) -> str:
    names = params.get("ExpressionAttributeNames", {})
    values = params.get("ExpressionAttributeValues", {})
    for pattern in _KEY_EQUALITY_RES:
        for match in pattern.finditer(params["KeyConditionExpression"]):
            name = match.group("name")
            if names.get(name, name) == partition_key:
                return _string_value(values[match.group("value")])
    raise UnsupportedPolicyError("the query's key condition has no equality on the partition key")
