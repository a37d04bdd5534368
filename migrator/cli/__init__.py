"""The command line (typer): one thin function per command; the work happens below it.

`migrator.cli.main` holds the orchestration commands (plan, apply, status, resume, report, cancel,
rollback, graph, schema), `migrator.cli.verify` the repository check, `migrator.cli.sandbox` the local
test bed's; `choices` their closed option values, `helptext` the order and examples of their help.

Start-up: loading the packages creates a few hundred thousand objects that live as long as the
process. The cyclic garbage collector is paused while they load (its passes find nothing to free
there) and they are then frozen (`gc.freeze`), so no later pass traverses them again, during the
run or at exit. That is about 0.1 s of CPU less at every start, a quarter of the start-up
(`scripts/bench_speed.py` prints migrator's CPU; the commit that added this has the figures).
"""

import gc

_collecting = gc.isenabled()
gc.disable()
try:
    from migrator.cli.main import app
finally:
    gc.freeze()
    if _collecting:
        gc.enable()

__all__ = ["app"]
