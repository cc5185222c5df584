"""`python -m magic_rl.cli ...` (also what `accelerate launch -m magic_rl.cli` runs): the `magic` CLI."""

import sys

from magic_rl.cli import main

sys.exit(main())
