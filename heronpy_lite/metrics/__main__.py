import sys

from heronpy_lite.metrics.server import main

sys.exit(main())
