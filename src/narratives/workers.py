"""Worker processes that end with the process that started them, however it ends."""

from __future__ import annotations

import os
import signal
import sys


def die_with(parent: int) -> None:
    """Make this worker process die when `parent` does (SIGKILL included).

    A worker that outlived a killed `ingest` or `tag` would go on working, or writing to the
    corpus, beside the re-run. Linux kills it for us (PR_SET_PDEATHSIG); elsewhere it is left to
    the pools' own shutdown, which works when the parent exits normally.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
