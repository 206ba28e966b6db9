"""AWS's name rules as data: each kind of name the stack makes has one, and they say what AWS says."""

from __future__ import annotations

import pytest

from handlers.contract import TENANT_ID_MAX_LENGTH
from tiers.naming import FUNCTIONS, NAME_RULES, NameKind, Naming

NAMING = Naming(project="tenant-tiers", stack="prod")


def test_every_kind_of_name_has_a_rule() -> None:
    assert set(NAME_RULES) == set(NameKind)


def test_physical_names_cover_every_name_the_stack_makes() -> None:
    names = list(
        NAMING.physical_names(
            tier_names=["basic"], tenant_ids=["acme", "zeta"], silo_tenant_ids=["zeta"], stage_name="v1"
        )
    )
    assert (NameKind.DYNAMODB_TABLE, "tenant-tiers-prod-silo-zeta") in names
    assert (NameKind.API_KEY, "tenant-tiers-prod-acme") in names
    assert (NameKind.LOG_GROUP, "/aws/apigateway/tenant-tiers-prod-api/v1") in names
    assert sum(kind is NameKind.LAMBDA_FUNCTION for kind, _ in names) == len(FUNCTIONS)
    assert {kind for kind, _ in names} == set(NameKind) - {NameKind.IAM_ROLE}


@pytest.mark.parametrize(
    ("kind", "name", "accepted"),
    [
        (NameKind.LAMBDA_FUNCTION, "a" * 64, True),
        (NameKind.LAMBDA_FUNCTION, "a" * 65, False),
        (NameKind.LAMBDA_FUNCTION, "tenant-tiers-prod.eu-authorizer", False),
        (NameKind.DYNAMODB_TABLE, "ab", False),
        (NameKind.DYNAMODB_TABLE, "tenant-tiers-prod.eu-pooled", True),
        (NameKind.DYNAMODB_TABLE, "a" * 256, False),
        (NameKind.LOG_GROUP, "/aws/lambda/x#y", True),
        (NameKind.LOG_GROUP, "/aws/lambda/x y", False),
        (NameKind.IAM_ROLE, "role+=,.@_-", True),
        (NameKind.STAGE, "v.1", False),
        (NameKind.USER_POOL, "pool name.1", True),
        (NameKind.API_KEY, "anything at all: no published rule", True),
        (NameKind.API_KEY, "", False),
    ],
)
def test_rules_accept_and_refuse_what_aws_does(kind: NameKind, name: str, accepted: bool) -> None:
    assert NAME_RULES[kind].accepts(name) is accepted


def test_bad_characters_are_listed_once_in_order() -> None:
    assert NAME_RULES[NameKind.LAMBDA_FUNCTION].bad_characters("a.b:c.d") == ".:"
    assert NAME_RULES[NameKind.API_KEY].bad_characters("a.b:c") == ""


def test_a_default_stack_leaves_room_for_the_longest_tenant_id() -> None:
    # The longest silo table name of the dev stack is far inside DynamoDB's 255 characters.
    longest = Naming(project="tenant-tiers", stack="dev").silo_table("t" * TENANT_ID_MAX_LENGTH)
    assert NAME_RULES[NameKind.DYNAMODB_TABLE].accepts(longest)
