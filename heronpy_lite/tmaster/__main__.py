import sys

from heronpy_lite.tmaster.server import main

sys.exit(main())
