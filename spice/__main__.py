"""``python -m spice`` runs the ``trio-spice`` command."""

import sys

from spice.cli import main

sys.exit(main())
