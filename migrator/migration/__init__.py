"""CLI -> migration -> planner / executor: the thin middle; open a migration, review, run, read back, undo it.

Place in the flow: CLI -> migration -> planner / executor -> steps -> clients -> state. A migration is
a plan file plus its state file (beside it, `<plan>.state.db`, or `--state`) and a JSON-lines copy
of the state's event log (`<plan>.events.jsonl`). One module per concern:

- `opened`: the migration object and how it is opened (plan, secrets resolved once, clients, buckets);
- `secrets`: the one place `${VAR}` references are resolved, and the redactor of their values;
- `files`: the state file and the event log beside the plan;
- `saved`: `plan --out` and `apply SAVED` (a reviewed plan executed exactly);
- `review`: the dry run (`migrator plan`);
- `run`: prepare, record and execute a run (`apply`, `resume`);
- `readback`: `status`, `report` and the cutover's figures, from the state file alone;
- `undo`: `cancel`; `cancel_requests`: the requests a cancel sends (its advice in the dry run shows the same);
  `rollback`: undo a cutover.

The pure selections of steps (`--until`, `--only`, phases) live on the planner side, in
migrator.selection, and the estimates in migrator.estimate.
"""
