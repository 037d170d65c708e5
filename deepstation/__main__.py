import sys

from deepstation.cli import main

sys.exit(main())
