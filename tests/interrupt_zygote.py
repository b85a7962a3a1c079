"""A process that imports dask-h2 once, then forks one child per command read from stdin (JSON:
``{"argv": [...], "stderr": PATH}``) and runs the command's entry point in it, as the console script
does: it answers ``{"pid": ...}`` when the child starts and ``{"code": ...}`` when it ends.
tests/test_interrupts.py interrupts many runs this way without
paying the imports of Dask, Zarr and numba for each; nothing here starts a thread before forking."""
import json
import os
import signal
import sys

import dask_h2.cli  # noqa: F401 (imported once, before forking)
from dask_h2.command import main

for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        code = main(request["argv"])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    print(json.dumps({"code": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])}), flush=True)
