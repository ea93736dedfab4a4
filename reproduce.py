#!/usr/bin/env python
"""Regenerate every figure and the claims report: ``python reproduce.py --all`` (see --help)."""

import os
import sys

from beyond_backprop.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into head or less, which closed early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
