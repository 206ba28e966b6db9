"""The tier catalog: tiers and tenants as code, loaded and checked from one YAML file."""
