"""``python -m matryo``: the ``matryo`` command line."""

from __future__ import annotations

import sys

from matryo.cli import main

if __name__ == "__main__":
    sys.exit(main())
