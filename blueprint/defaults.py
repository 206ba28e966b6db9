"""Defaults and bounds of stack settings that the program and the local stack share."""

from __future__ import annotations

from typing import Final

DEFAULT_AUTHORIZER_CACHE_TTL_SECONDS: Final = 300
MAX_AUTHORIZER_CACHE_TTL_SECONDS: Final = 3600
