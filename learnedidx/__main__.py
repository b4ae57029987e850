"""``python -m learnedidx {warmup,explain} ...``: see :mod:`learnedidx.cli`."""

import sys

from .cli import main

sys.exit(main())
