#!/usr/bin/env python3
"""Entry point: `python generate.py render b200-prod`. See `python generate.py --help`."""

import sys

from deploygen.cli import main

if __name__ == "__main__":
    sys.exit(main())
