"""``python -m heronpy_lite.tracker CLUSTER ...``: the same as ``heronpy-lite tracker``."""

import sys

from heronpy_lite.tracker.server import main

sys.exit(main())
