#!/usr/bin/env python
"""Regenerate every figure and the claims report: ``python reproduce.py --all`` (see --help)."""

import sys

from beyond_backprop.pipeline import main

if __name__ == "__main__":
    sys.exit(main())
