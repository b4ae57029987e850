"""``python -m learnedidx warmup [DTYPES]``: see :mod:`learnedidx.warmup`."""

import sys

from .warmup import main

sys.exit(main())
