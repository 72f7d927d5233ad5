"""``python -m deltaflow``: the ``deltaflow`` command (see :mod:`deltaflow.cli`)."""

import sys

from deltaflow.cli import main

sys.exit(main())
