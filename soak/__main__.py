"""``python -m soak``: see :mod:`soak.run`."""

import sys

from .run import main

sys.exit(main())
