"""`python -m local up` with a planted bug: the tenant API's data layer reaches into one victim's data.

    python -m tests.local.faulty_stack VICTIM_TENANT VICTIM_TABLE up --tiers FILE --port 0

Every request is still served on its own tenant's tagged credentials, exactly as the real handler gets
them, but the faulty data layer names the victim's table and partition: the kind of bug (a tenant id or
table taken from the wrong place) that IAM must refuse when handler code fails. Only the victim's own
requests are correct.
"""

from __future__ import annotations

import sys

from handlers import tenant_data
from local.__main__ import main


def plant(victim_tenant: str, victim_table: str) -> None:
    real_table = tenant_data.TenantClients.table

    def reaching_table(
        self: tenant_data.TenantClients, tenant_id: str, registry_table: str
    ) -> tenant_data.TenantTable:
        # the caller's own session, as the real code gets it
        own = real_table(self, tenant_id, registry_table)
        return tenant_data.TenantTable(own.client, victim_table, victim_tenant, own.placement_table)

    tenant_data.TenantClients.table = reaching_table  # type: ignore[method-assign]


if __name__ == "__main__":
    plant(sys.argv[1], sys.argv[2])
    sys.exit(main(sys.argv[3:]))
