"""The shape of one tier and one tenant entry, and plain-words messages for every way an entry can be wrong.

pydantic checks structure and types (strict: "10" is not a number, true is
not a number, 20.5 is not a whole number, unknown keys are errors); the
messages pydantic would print are replaced by ones that say what each field
must hold and how to fix it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from blueprint.defaults import DEFAULT_SERVER_ERROR_PERCENT, DEFAULT_THROTTLED_PERCENT
from tiers.model import Isolation, QuotaPeriod
from tiers.problems import shortened

NAME_MAX_LENGTH: Final = 128
# API Gateway takes burst, quota limit and offset as 32-bit integers.
AWS_INTEGER_MAX: Final = 2**31 - 1

# The quota offset is documented by AWS two ways: as requests subtracted in the
# first period (CloudFormation, Terraform, Pulumi) and as the day the period
# starts on (API Gateway's QuotaSettings). Only values valid in both readings
# are accepted; docs/tier-file.md explains it.
OFFSET_MAX: Final[Mapping[str, int]] = {QuotaPeriod.DAY: 0, QuotaPeriod.WEEK: 6, QuotaPeriod.MONTH: 27}


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ThrottleEntry(_Entry):
    rate: float = Field(gt=0, allow_inf_nan=False)
    burst: int = Field(gt=0, le=AWS_INTEGER_MAX)

    @model_validator(mode="after")
    def _burst_holds_rate(self) -> Self:
        if self.burst < self.rate:
            raise PydanticCustomError(
                "burst_below_rate",
                "burst {burst} is below the rate {rate}: the bucket must hold at least one second of "
                "requests at the steady rate. Raise burst to {needed} or more, or lower the rate.",
                {"burst": self.burst, "rate": f"{self.rate:g}", "needed": math.ceil(self.rate)},
            )
        return self


class QuotaEntry(_Entry):
    limit: int = Field(gt=0, le=AWS_INTEGER_MAX)
    period: Literal["DAY", "WEEK", "MONTH"]
    offset: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _offset_in_range(self) -> Self:
        highest = min(OFFSET_MAX[self.period], self.limit - 1)
        if self.offset > highest:
            allowed = "0" if highest == 0 else f"0 to {highest}"
            raise PydanticCustomError(
                "offset_out_of_range",
                "offset {offset} is out of range for period {period} and limit {limit}: it must be {allowed} "
                "(DAY: 0; WEEK: 0-6; MONTH: 0-27; always below the limit). Use a value in range or leave "
                "offset out (it defaults to 0); docs/tier-file.md explains why.",
                {"offset": self.offset, "period": self.period, "limit": self.limit, "allowed": allowed},
            )
        return self


class AlarmsEntry(_Entry):
    server_error_percent: float = Field(
        default=DEFAULT_SERVER_ERROR_PERCENT, gt=0, le=100, allow_inf_nan=False
    )
    throttled_percent: float = Field(default=DEFAULT_THROTTLED_PERCENT, gt=0, le=100, allow_inf_nan=False)


class TierEntry(_Entry):
    isolation: Literal["pooled", "silo"]
    throttle: ThrottleEntry
    quota: QuotaEntry
    renamed_from: str | None = None
    """The tier's previous name: the stack keeps its usage plan (and every key in it) under the new name."""
    alarms: AlarmsEntry = AlarmsEntry()


class TenantEntry(_Entry):
    tier: str
    name: str = Field(default="", min_length=1, max_length=NAME_MAX_LENGTH)
    """Empty when the file gives no name: the tenant id stands in for it."""
    suspended: bool = False

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, name: str) -> str:
        if not name.strip():
            raise PydanticCustomError(
                "blank_name", "name is only white space; write a display name or leave `name` out."
            )
        return name


_EXPECTED: Final[Mapping[str, str]] = {
    "isolation": "pooled (data in the shared table) or silo (a table of its own per tenant)",
    "throttle": "a mapping with rate and burst, such as {rate: 10, burst: 20}",
    "quota": "a mapping with limit, period and optionally offset, such as {limit: 10000, period: MONTH}",
    "rate": "a positive number of requests per second, such as 10 or 2.5",
    "burst": (
        "a positive whole number of requests (the token bucket size), at least the rate "
        f"and at most {AWS_INTEGER_MAX:,}"
    ),
    "limit": f"a positive whole number of requests per period, up to {AWS_INTEGER_MAX:,}",
    "period": "DAY, WEEK or MONTH, in upper case",
    "offset": "a whole number from 0 (see docs/tier-file.md for its range)",
    "alarms": (
        "a mapping with server_error_percent and throttled_percent (both optional), "
        "such as {server_error_percent: 2, throttled_percent: 20}"
    ),
    "server_error_percent": (
        "a percentage above 0 and at most 100: the share of the tier's requests answered 5xx in five "
        f"minutes above which its alarm fires (default {DEFAULT_SERVER_ERROR_PERCENT:g})"
    ),
    "throttled_percent": (
        "a percentage above 0 and at most 100: the share of the tier's requests answered 429 in five "
        f"minutes above which its alarm fires (default {DEFAULT_THROTTLED_PERCENT:g})"
    ),
    "tier": "the name of a tier defined under `tiers:`",
    "name": f"text of 1 to {NAME_MAX_LENGTH} characters",
    "suspended": "true or false",
    "renamed_from": "the tier's previous name, such as renamed_from: basic",
}
_NUMBER_FIELDS: Final = frozenset(
    {"rate", "burst", "limit", "offset", "server_error_percent", "throttled_percent"}
)
_WHOLE_NUMBER_FIELDS: Final = frozenset({"burst", "limit", "offset"})
_CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "isolation": tuple(Isolation),
    "period": tuple(QuotaPeriod),
}
_TEXT_BOOLEANS: Final = frozenset({"yes", "no", "on", "off", "y", "n", "true", "false"})


def entry_problems(
    model: type[_Entry], errors: Iterable[ErrorDetails], expected: Mapping[str, str] | None = None
) -> list[tuple[tuple[str, ...], str]]:
    """(path inside the entry, message) for each pydantic error; ``expected`` overrides field descriptions."""
    wording = {**_EXPECTED, **(expected or {})}
    problems = []
    for error in errors:
        loc = tuple(str(part) for part in error["loc"])
        kind = error["type"]
        if kind == "burst_below_rate":
            problems.append(((*loc, "burst"), error["msg"]))
        elif kind == "offset_out_of_range":
            problems.append(((*loc, "offset"), error["msg"]))
        elif kind == "extra_forbidden":
            problems.append((loc, unknown_key_message(loc[-1], _keys_at(model, loc[:-1]))))
        elif kind == "missing":
            field = loc[-1]
            problems.append((loc, f"missing '{field}'; add `{field}:` with {wording[field]}."))
        elif kind == "blank_name":
            problems.append((loc, error["msg"]))
        else:
            field = loc[-1]
            value = error["input"]
            problems.append(
                (loc, f"'{field}' must be {wording[field]}; found {describe(value)}.{_hint(field, value)}")
            )
    return problems


def unknown_key_message(key: str, valid: Iterable[str]) -> str:
    valid_keys = list(valid)
    close = difflib.get_close_matches(key, valid_keys, n=1, cutoff=0.6)
    suggestion = f" Did you mean '{close[0]}'?" if close else ""
    return f"unknown key '{shortened(key)}'.{suggestion} Keys allowed here: {', '.join(valid_keys)}."


def describe(value: Any) -> str:
    """How a value read from YAML looks to the person who wrote it."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the whole number {value}"
    if isinstance(value, float):
        return f"the number {value:g}"
    if isinstance(value, str):
        if len(value) > 40:
            return f"text of {len(value)} characters"
        return f'the text "{value}"' if value else "empty text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _hint(field: str, value: Any) -> str:
    if field in _NUMBER_FIELDS:
        if isinstance(value, str) and _is_number(value):
            return " Remove the quotes: a quoted number is text."
        if field in _WHOLE_NUMBER_FIELDS and isinstance(value, float) and math.isfinite(value):
            return " Use a whole number."
    if field == "suspended" and isinstance(value, str) and value.lower() in _TEXT_BOOLEANS:
        return " Write true or false without quotes (in YAML 1.2 yes, no, on and off are text)."
    if field in _CHOICES and isinstance(value, str):
        choices = _CHOICES[field]
        by_case = {choice.lower(): choice for choice in choices}
        close = by_case.get(value.lower()) or next(
            iter(difflib.get_close_matches(value, choices, n=1, cutoff=0.5)), None
        )
        if close:
            return f" Did you mean '{close}'?"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _keys_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
