"""Storage: how many bytes of database each action execution leaves behind.

A Conveyor server runs as a subprocess on SQLite in a temporary home with the engine
benchmark's pipeline (a Git source, then 20 Commands actions in sequence). After the warm-up
execution the database's pages are counted per table, indexes included (SQLite's ``dbstat``),
then ``EXECUTIONS`` more executions run and the pages are counted again: the growth divided by
the action executions added is what each one costs on disk, split by table. The floor is the
action execution's own row as stored (the sum of its columns' lengths): what no encoding of
the history can go below without forgetting something ListActionExecutions returns.

The audit trail grows with the API calls made, not with the actions run: here it is mostly
the benchmark's own GetPipelineExecution every 20 ms while it waits, whose count follows how
fast the machine is. It is shown apart, per recorded call, and left out of the aim; the total
with it is printed too.
Aim: 1 KB per action execution at most, retention aside.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from pathlib import Path

from api import client, endpoint
from engine import FILES, PIPELINE, conveyor_server, declaration, make_repo, run_once, wait_done

EXECUTIONS = 5
AIM_BYTES = 1024
# Tables that grow with the API calls made rather than with the actions run.
PER_CALL = ("audit_events", "audit_contexts")


def _bytes_by_table(database: Path) -> tuple[Counter[str], int, int]:
    """Bytes of pages in use per table (its indexes counted with it), the action rows, and
    the audit records."""
    with sqlite3.connect(database) as conn:
        owners = dict(
            conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE name IS NOT NULL")
        )
        used: Counter[str] = Counter()
        for name, size in conn.execute(
            "SELECT name, sum(pgsize - unused) FROM dbstat GROUP BY name"
        ):
            used[owners.get(name, name)] += int(size)
        (actions,) = conn.execute("SELECT count(*) FROM action_executions").fetchone()
        (calls,) = conn.execute("SELECT count(*) FROM audit_events").fetchone()
    return used, int(actions), int(calls)


def _row_bytes(database: Path) -> float:
    """The mean stored length of an action execution row's columns."""
    with sqlite3.connect(database) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(action_executions)")]
        total = " + ".join(f"coalesce(length(CAST({c} AS BLOB)), 0)" for c in columns)
        (mean,) = conn.execute(f"SELECT avg({total}) FROM action_executions").fetchone()
    return float(mean)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as name:
        folder = Path(name)
        repo = folder / "repo"
        make_repo(repo)
        home = folder / "home"
        home.mkdir()
        database = home / "conveyor.db"
        with conveyor_server(home, None) as port:
            cp = client("codepipeline", endpoint(port))
            cp.create_pipeline(pipeline=declaration(repo))
            first = cp.list_pipeline_executions(pipelineName=PIPELINE)
            wait_done(cp, first["pipelineExecutionSummaries"][0]["pipelineExecutionId"])
            before, actions_before, calls_before = _bytes_by_table(database)
            for _ in range(EXECUTIONS):
                run_once(cp, 60.0)
            after, actions_after, calls_after = _bytes_by_table(database)
            floor = _row_bytes(database)
    added = actions_after - actions_before
    calls = calls_after - calls_before
    growth = {table: after[table] - before[table] for table in after}
    history = {t: grew for t, grew in growth.items() if t not in PER_CALL}
    trail = sum(grew for t, grew in growth.items() if t in PER_CALL)
    total = sum(history.values())
    per_action = total / added
    print(
        f"{added} action executions in {EXECUTIONS} executions of a Git source and "
        f"{len(FILES)}-file repository, then 20 Commands actions (SQLite pages in use, "
        "indexes with their table)"
    )
    print(f"floor: an action execution's own row, {floor:.0f} bytes of column data")
    print(f"{'per action execution':<24}{per_action:>8.0f} bytes")
    for table, grew in sorted(history.items(), key=lambda item: -item[1]):
        if grew:
            share = grew / total * 100
            print(f"  {table:<22}{grew / added:>8.0f} bytes  {share:4.0f}%")
    if calls:
        print(
            f"audit trail: {calls} API calls recorded, {trail / calls:.0f} bytes per call "
            f"({trail / added:.0f} bytes per action execution at this polling rate; with "
            f"them {(total + trail) / added:.0f} bytes per action execution)"
        )
    verdict = "PASS" if per_action <= AIM_BYTES else "MISS"
    print(f"aim: \u2264 {AIM_BYTES} bytes per action execution, the audit of API calls aside")
    print(f"  {verdict}  {per_action:.0f} bytes ({per_action / floor:.1f}\u00d7 the row alone)")


if __name__ == "__main__":
    main()
