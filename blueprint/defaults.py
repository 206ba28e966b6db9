"""Defaults and bounds of stack settings that the program and the local stack share."""

from __future__ import annotations

from typing import Final

DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS: Final = 300
MAX_AUTHORIZER_CACHE_TTL_SECONDS: Final = 3600
# The tenant API function's timeout: also how long `python -m tiers migrate` lets requests that read the
# old placement finish before it deletes the source rows.
TENANT_API_TIMEOUT_SECONDS: Final = 15

# Per-tier alarm thresholds when the tier file's `alarms:` block leaves them out (percent of requests
# in five minutes).
DEFAULT_SERVER_ERROR_PERCENT: Final = 1.0
DEFAULT_THROTTLED_PERCENT: Final = 10.0
