"""Lambda code: the token authorizer and the tenant API. Imports nothing from tiers/ or infra/."""
