"""Repository-wide pytest settings.

Under CI, hypothesis runs derandomized: each run explores the same examples, so a result is
reproducible and a red build is never a coin toss; locally it keeps exploring new ones.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")
