"""Where the local stack lives and what it calls itself; light enough for the client commands to import."""

from __future__ import annotations

from pathlib import Path

from tiers.local_stack import DUMMY_CREDENTIALS, HOST, REGION
from tiers.naming import LOCAL_STACK, PROJECT, Naming

__all__ = ["DEFAULT_PORT", "DEFAULT_TIERS_FILE", "DUMMY_CREDENTIALS", "HOST", "NAMING", "REGION", "STACK"]

STACK = LOCAL_STACK
NAMING = Naming(project=PROJECT, stack=STACK)
"""The local stack's physical names: the program's naming, for the stack called local."""
DEFAULT_PORT = 8080
DEFAULT_TIERS_FILE = Path("tiers/dev.yaml")
