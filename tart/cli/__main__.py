"""`python -m tart.cli ...`: the same as the `tart` command."""
import sys

from tart.cli import main

sys.exit(main())
