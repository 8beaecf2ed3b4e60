"""Retention through spd: history_max_runs finished runs per job are kept in the state database
(pruned at start-up and hourly), the newest ones, with their output; the other job is untouched."""
import os
import sqlite3


KEPT = f"keep{os.getpid()}"
OTHER = f"other{os.getpid()}"


def test_history_max_runs_prunes_the_oldest_runs_of_each_job(setup):
    setup.write_config(f"""
        {KEPT}:
          command: "echo run of keep"
          targets: testhost
          schedule: '@yearly'
        {OTHER}:
          command: "echo run of other"
          targets: testhost
          schedule: '@yearly'
        """, settings="history_max_runs: 2\n")
    proc, _ = setup.run_once(OTHER)
    assert proc.returncode == 0, proc.stderr
    instances = []
    for _ in range(4):
        proc, _ = setup.run_once(KEPT)
        assert proc.returncode == 0, proc.stderr
    db = sqlite3.connect(str(setup.logdir / "state.db"))
    try:
        rows = db.execute("SELECT instance, status FROM runs WHERE job = ? ORDER BY started", (KEPT,)).fetchall()
        # Pruned when the 4th spd started (2 kept), then the 4th run was added.
        assert len(rows) == 3, rows
        assert all(status == "success" for _, status in rows)
        instances = [i for i, _ in rows]
        outputs = db.execute(
            "SELECT count(*) FROM output JOIN targets ON targets.id = output.target_id WHERE targets.instance IN "
            f"({','.join('?' * len(instances))})", instances).fetchone()[0]
        assert outputs == 3
        # Nothing of the pruned runs is left behind.
        assert db.execute("SELECT count(*) FROM targets").fetchone()[0] == 4
        assert db.execute("SELECT count(*) FROM runs WHERE job = ?", (OTHER,)).fetchone()[0] == 1
    finally:
        db.close()
