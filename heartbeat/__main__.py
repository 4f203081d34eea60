"""``python -m heartbeat`` runs the same CLI as the ``alt42-heartbeat`` script."""

import sys

from heartbeat.cli import main

sys.exit(main())
