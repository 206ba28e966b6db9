"""A small IAM policy evaluator: enough to judge this project's documents, and honest about the rest.

Covered, following the IAM policy evaluation logic:

- an explicit ``Deny`` in any policy wins over any ``Allow``; without a matching ``Allow`` the request is
  denied (``evaluate_all`` combines several identity-based policies that way);
- ``Action`` (case-insensitive) and ``Resource`` (case-sensitive) with ``*`` and ``?`` wildcards; a wildcard
  may span ``:`` and ``/`` (IAM's resource matching is no stricter than that for the ARNs used here);
- ``Principal`` (``"*"``, ``{"AWS": ...}`` with role ARNs, account ids or ``arn:aws:iam::ACCOUNT:root``,
  ``{"Service": ...}``) for trust policies;
- policy variables ``${aws:PrincipalTag/key}`` and any ``${context:key}``, plus ``${*}``, ``${?}``,
  ``${$}``; a substituted value is literal (its ``*`` is not a wildcard) and a variable that cannot be
  resolved matches nothing;
- condition operators ``StringEquals``, ``StringLike``, ``Bool``, ``Null``, and the set forms
  ``ForAllValues:StringEquals`` / ``ForAnyValue:StringEquals`` (``ForAllValues`` is true when the key is
  absent or empty, ``ForAnyValue`` false); operators AND together, keys AND together, values OR together.

Anything else (``NotAction``, ``NotResource``, another operator, a condition on a key the request's mapper
did not compute) raises ``UnsupportedPolicyError`` rather than being guessed at: the tests fail loudly and
the local stack refuses the call, saying why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ContextValue = str | Sequence[str]
PolicyDocument = Mapping[str, Any]

_PRINCIPAL_TAG_PREFIX = "aws:principaltag/"
_ACCOUNT_ROOT_RE = re.compile(r"(?:arn:aws:iam::)?(\d{12})(?::root)?")
_ARN_ACCOUNT_RE = re.compile(r"arn:aws:(?:iam|sts)::(\d{12}):")


class UnsupportedPolicyError(ValueError):
    """The policy or the request uses something this evaluator does not implement."""


class Decision(StrEnum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True)
class Request:
    """One authorization request: who asks for which action on which resource, with which context.

    ``known_keys``: when given, the condition keys (lower case; a trailing ``*`` matches any suffix) the
    request's mapper computes, present in ``context`` or deliberately absent. A condition on any other key
    (not a principal tag either) raises ``UnsupportedPolicyError``: its absence here may be no absence on
    AWS. ``None`` means the context is complete (hand-written requests in tests).
    """

    action: str
    resource: str
    principal_tags: Mapping[str, str] = field(default_factory=dict)
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    principal: str | None = None
    known_keys: frozenset[str] | None = None

    def value(self, key: str) -> ContextValue | None:
        """A condition key's value (keys are case-insensitive), principal tags included."""
        wanted = key.lower()
        if wanted.startswith(_PRINCIPAL_TAG_PREFIX):
            return self.principal_tags.get(key[len(_PRINCIPAL_TAG_PREFIX) :])
        for name, value in self.context.items():
            if name.lower() == wanted:
                return value
        if self.known_keys is not None and not any(
            wanted == known or (known.endswith("*") and wanted.startswith(known[:-1]))
            for known in self.known_keys
        ):
            raise UnsupportedPolicyError(f"condition key {key} is not computed for {self.action} requests")
        return None


def evaluate(policy: PolicyDocument, request: Request) -> Decision:
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


def evaluate_all(policies: Iterable[PolicyDocument], request: Request) -> Decision:
    """Several policies of one principal: an explicit deny in any wins, else an allow in any allows."""
    decisions = {evaluate(policy, request) for policy in policies}
    if Decision.EXPLICIT_DENY in decisions:
        return Decision.EXPLICIT_DENY
    return Decision.ALLOW if Decision.ALLOW in decisions else Decision.IMPLICIT_DENY


def is_allowed(policy: PolicyDocument, request: Request) -> bool:
    return evaluate(policy, request) is Decision.ALLOW


def all_allowed(policy: PolicyDocument, requests: Sequence[Request]) -> bool:
    """True when every request is allowed (an API call needing several authorizations)."""
    return bool(requests) and all(is_allowed(policy, request) for request in requests)


def _statements(policy: PolicyDocument) -> list[Mapping[str, Any]]:
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
    unsupported = set(principal) - {"AWS", "Service"}
    if unsupported:
        raise UnsupportedPolicyError(f"principal kind {', '.join(sorted(unsupported))} is not supported")
    names = [name for kind in ("AWS", "Service") for name in _as_list(principal.get(kind, []))]
    return caller is not None and any(_names_caller(name, caller) for name in names)


def _names_caller(name: str, caller: str) -> bool:
    if name in ("*", caller):
        return True
    # An account (its id or its root ARN) stands for every principal of that account.
    account = _ACCOUNT_ROOT_RE.fullmatch(name)
    caller_account = _ARN_ACCOUNT_RE.match(caller)
    return account is not None and caller_account is not None and account.group(1) == caller_account.group(1)


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


def _value_matcher(operator: str, policy_values: list[Any], request: Request) -> Callable[[str], bool]:
    if operator == "StringEquals":
        literals = [_substituted_literal(str(value), request) for value in policy_values]
        return lambda value: any(literal is not None and value == literal for literal in literals)
    if operator == "StringLike":
        patterns = [_substituted_pattern(str(value), request) for value in policy_values]
        return lambda value: any(
            pattern is not None and re.fullmatch(pattern, value, re.DOTALL) is not None
            for pattern in patterns
        )
    if operator == "Bool":
        wanted = {str(value).lower() for value in policy_values}
        return lambda value: value.lower() in wanted
    raise UnsupportedPolicyError(f"condition operator {operator!r} is not supported")
