"""``python -m dask_h2``: the ``dask-h2`` command."""
import sys

from .interrupts import main

sys.exit(main())
