"""`make bench`: wrk against deploykit serve and uvicorn, side by side.

The bundled server (issue 4) does not exist yet, so there is nothing to
compare; this exits non-zero instead of writing a table with made-up rows.
"""

import sys

print("make bench: deploykit serve is not built yet (issue 4); no benchmark to run", file=sys.stderr)
sys.exit(2)
