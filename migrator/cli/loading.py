"""How the command line imports what a command runs (CLI layer): with the cyclic garbage collector paused.

Place in the flow: the top. Loading the packages creates a few hundred thousand objects that live as long
as the process. The collector is paused while they load (its passes find nothing to free there) and they
are then frozen (`gc.freeze`), so no later pass traverses them again, during the run or at exit: about
0.1 s of CPU less per start, a quarter of the start-up when every command loaded everything
(`scripts/bench_speed.py` prints migrator's CPU). The command line itself is imported so (cli/__init__.py),
and each command imports its work inside `frozen_imports()` (main.py), since only the command knows what
it needs.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_imports() -> Iterator[None]:
    """Run the block (its imports) with the cyclic GC paused, then freeze every object alive; the GC is
    enabled again afterwards when it was before."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
