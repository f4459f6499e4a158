import sys

from cnnkit.cli import main

sys.exit(main())
