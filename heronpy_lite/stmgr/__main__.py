import sys

from heronpy_lite.stmgr.server import main

sys.exit(main())
