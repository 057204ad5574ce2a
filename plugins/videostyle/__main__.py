import sys

from videostyle.cli import main

sys.exit(main())
