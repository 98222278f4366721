"""``python -m probe.commands.bench --markdown OUT.json``: the tables of a saved run."""

import sys

from probe.commands.bench._markdown import main

sys.exit(main())
