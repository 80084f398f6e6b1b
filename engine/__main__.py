"""``python -m engine VERB``: see :mod:`engine.cli`."""

import sys

from engine.cli import main

sys.exit(main())
