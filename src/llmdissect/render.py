"""`python -m llmdissect.render <records folder> ... --out <dir>`, the documented command; the
presentation layer lives in llmdissect.report."""

import sys

from .report.render import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
