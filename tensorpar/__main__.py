"""``python -m tensorpar``: the command line (see :mod:`tensorpar.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
