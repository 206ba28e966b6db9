"""`python -m tiers`: see tiers.cli."""

from __future__ import annotations

import sys

from tiers.cli import main

sys.exit(main())
