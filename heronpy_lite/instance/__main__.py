import sys

from heronpy_lite.instance.runner import main

sys.exit(main())
