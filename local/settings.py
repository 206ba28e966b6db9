"""Where the local stack lives and what it calls itself; light enough for the client commands to import."""

from __future__ import annotations

from pathlib import Path

PROJECT = "tenant-tiers"
STACK = "local"
REGION = "us-east-1"
HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_TIERS_FILE = Path("tiers/dev.yaml")

# moto accepts any credentials; setting them explicitly keeps a real profile or key from being used.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
