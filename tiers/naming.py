"""Physical names of everything the tier file drives, shared by the Pulumi program and the local stack.

Names depend on the stack and the tenant id only, never on the tier, so a tier
move renames nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    project: str
    stack: str

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    @property
    def pooled_table(self) -> str:
        return f"{self.prefix}-pooled"

    @property
    def registry_table(self) -> str:
        return f"{self.prefix}-registry"

    @property
    def silo_table_prefix(self) -> str:
        """Silo table names are this prefix plus the tenant id (the IAM policy relies on it)."""
        return f"{self.prefix}-silo-"

    def silo_table(self, tenant_id: str) -> str:
        return f"{self.silo_table_prefix}{tenant_id}"

    def api_key(self, tenant_id: str) -> str:
        return f"{self.prefix}-{tenant_id}"

    def function(self, function: str) -> str:
        return f"{self.prefix}-{function}"

    def usage_plan(self, tier_name: str) -> str:
        return f"{self.prefix}-{tier_name}"

    @property
    def user_pool(self) -> str:
        return f"{self.prefix}-users"

    @property
    def app_client(self) -> str:
        return f"{self.prefix}-app"
