"""Entry point of the tenant-tiers Pulumi program (see infra/program.py)."""

from infra.program import main

main()
