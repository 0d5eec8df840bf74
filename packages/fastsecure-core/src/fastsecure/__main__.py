"""``python -m fastsecure``."""

from .cli import main

raise SystemExit(main())
