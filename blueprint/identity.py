"""Cognito settings of the user pool and its app client, declared by the program and by the local stack."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.contract import TENANT_ATTRIBUTE, TENANT_CLAIM, TENANT_ID_MAX_LENGTH

# What a signed-in user may change about themselves with their own access token. The
# tenant attribute is deliberately absent: a user who could write it could join any tenant.
USER_WRITABLE_ATTRIBUTES = ("email", "name")
CLIENT_READABLE_ATTRIBUTES = ("email", "email_verified", "name", TENANT_CLAIM)
AUTH_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
USERNAME_ATTRIBUTES = ("email",)
# Sign-in matches usernames (here: emails) whatever their case, as `python -m tiers users add`
# stores them lower-cased. Cognito fixes this when the pool is created: changing it replaces the
# pool, and every user with it.
USERNAME_CASE_SENSITIVE = False


def sign_in_username(username: str) -> str:
    """The username as a pool with ``USERNAME_CASE_SENSITIVE`` matches it: its case does not count.

    Cognito does this itself for such a pool; the local stack's emulator (moto 5.2.5) ignores the
    setting, so the local stack's sign-in folds the case before it asks."""
    return username if USERNAME_CASE_SENSITIVE else username.lower()


@dataclass(frozen=True)
class StringAttribute:
    """A custom string attribute of the user pool, declared by the program and by the local stack."""

    name: str
    mutable: bool
    min_length: int
    max_length: int


# Immutable: once an administrator has set a user's tenant, nobody can change it.
TENANT_ID_ATTRIBUTE = StringAttribute(
    name=TENANT_ATTRIBUTE, mutable=False, min_length=1, max_length=TENANT_ID_MAX_LENGTH
)
