"""``python -m dask_h2``: the ``dask-h2`` command."""
import sys

from .command import main

sys.exit(main())
