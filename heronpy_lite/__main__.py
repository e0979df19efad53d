import sys

from heronpy_lite.cli.main import main

sys.exit(main())
