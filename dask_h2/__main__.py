"""``python -m dask_h2``: the ``dask-h2`` command."""
import sys

from dask_h2.command import main

sys.exit(main())
