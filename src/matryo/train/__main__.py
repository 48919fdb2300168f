"""``python -m matryo.train``."""

from __future__ import annotations

import sys

from matryo.train.cli import main

if __name__ == "__main__":
    sys.exit(main())
