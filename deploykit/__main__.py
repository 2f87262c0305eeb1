import sys

from deploykit.entry import main

sys.exit(main())
