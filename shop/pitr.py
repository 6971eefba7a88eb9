"""The point-in-time recovery drill (`make pitr-drill`, chapter 24).

A backup nobody has restored is a hope. The drill restores one, on a
cluster of its own (shop/scratch_cluster.py), never the dev primary:

1. a scratch cluster with the shop's schema and the small seed, archiving
   its WAL with pgBackRest, and a full backup of it;
2. orders placed through the shop's own services (`manage.py
   drill_checkouts`, the same three phases as the API);
3. the target time, taken with the list of every order at that moment;
4. more orders after the target, then the mistake: the schema owner's
   TRUNCATE of the orders, which row-level security does not stop;
5. a new cluster restored from the backup with `pgbackrest restore
   --type=time`, replaying the archived WAL up to the target, then
   promoted;
6. the proof: the restored cluster holds exactly the orders of step 3, by
   id and total, so none placed after the target.

Each step prints a line; any difference fails the drill.
"""

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from shop.scratch_cluster import ROOT, ScratchCluster, ScratchError, as_pg, chown_pg

STANZA = "drill"
ORDERS_SQL = "SELECT id, total FROM orders_order ORDER BY id"


class DrillFailed(Exception):
    """The restored cluster does not hold what was committed before the target."""


@dataclass
class Repository:
    """A pgBackRest repository of one scratch cluster, with its own config.

    pgBackRest runs as the postgres user, which owns the data directory it
    copies, and connects as shop_backup over the cluster's socket
    (scripts/sql/backup_role.sql): the dev primary's arrangement.
    """

    home: Path
    stanza: str = STANZA

    @property
    def conf(self) -> Path:
        return self.home / "pgbackrest.conf"

    def archive_command(self) -> str:
        return f"pgbackrest --config={self.conf} --stanza={self.stanza} archive-push %p"

    def write_conf(self, cluster: ScratchCluster) -> None:
        for sub in ("repo", "log", "lock"):
            (self.home / sub).mkdir(mode=0o700, exist_ok=True)
            chown_pg(self.home / sub)
        self.conf.write_text(
            "[global]\n"
            f"repo1-path={self.home / 'repo'}\n"
            f"log-path={self.home / 'log'}\n"
            f"lock-path={self.home / 'lock'}\n"
            "log-level-console=warn\n"
            "start-fast=y\n"
            "compress-type=lz4\n"
            "archive-timeout=30\n"
            f"\n[{self.stanza}]\n"
            f"pg1-path={cluster.datadir}\n"
            f"pg1-port={cluster.port}\n"
            f"pg1-socket-path={cluster.socket_dir}\n"
            "pg1-user=shop_backup\n"
        )
        chown_pg(self.conf)

    def run(self, *args: str) -> str:
        command = as_pg(
            ["pgbackrest", f"--config={self.conf}", f"--stanza={self.stanza}", *args]
        )
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise ScratchError(
                f"pgbackrest {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def last_backup(self) -> dict:
        (stanza,) = json.loads(self.run("info", "--output=json"))
        return stanza["backup"][-1]


@dataclass
class Report:
    out: Callable[[str], None] = print
    lines: list[str] = field(default_factory=list)
    # What the restore got wrong, by kind; empty when it matched.
    problems: dict = field(default_factory=dict)
    compared: bool = False

    def step(self, name: str, text: str) -> None:
        line = f"  {name:<14}{text}"
        self.lines.append(line)
        self.out(line)


def place_orders(cluster: ScratchCluster, count: int, seed: int) -> dict[int, Decimal]:
    """Orders placed through the shop's services: {id: total}, as acknowledged."""
    done = cluster.manage(
        "drill_checkouts",
        "--count",
        str(count),
        "--seed",
        str(seed),
        capture=True,
        check=False,
    )
    if done.returncode:
        raise DrillFailed(
            f"drill_checkouts failed ({done.returncode}): {done.stderr.strip()}"
        )
    placed = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            ack = json.loads(line)
            placed[int(ack["order"])] = Decimal(ack["total"])
    if not placed:
        raise DrillFailed(f"no order was placed: {done.stderr.strip()}")
    return placed


def orders_of(cluster: ScratchCluster) -> dict[int, Decimal]:
    # The cluster superuser reads past row-level security: every order.
    with cluster.superuser("shop") as connection:
        return dict(connection.execute(ORDERS_SQL).fetchall())


def ids(orders) -> str:
    return f"ids {min(orders)}..{max(orders)}" if orders else "none"


def run_drill(
    *, before: int = 12, after: int = 6, seed: str = "small", out=print
) -> Report:
    """Run the whole drill; raise DrillFailed on any difference."""
    if shutil.which("pgbackrest") is None:
        raise DrillFailed("pgbackrest is not installed (apt-get install pgbackrest)")
    report = Report(out)
    started = time.monotonic()
    # What a killed run left: stopped and removed, its server included.
    ScratchCluster("pitr-source").destroy()
    repo = Repository(ScratchCluster("pitr-source").home)
    source = ScratchCluster(
        "pitr-source",
        conf={"archive_mode": "on", "archive_command": repo.archive_command()},
    )
    restored = ScratchCluster("pitr-restored")
    restored.destroy()  # what a failed run left
    try:
        source.initdb()
        repo.write_conf(source)
        source.start()
        source.bootstrap_shop(seed_scale=seed)
        source.psql("-f", str(ROOT / "scripts" / "sql" / "backup_role.sql"))
        repo.run("stanza-create")
        repo.run("backup", "--type=full")
        backup = repo.last_backup()
        report.step(
            "base backup",
            f"{backup['label']} (pgBackRest, {backup['info']['size'] // 1024} kB)",
        )

        placed_before = place_orders(source, before, seed=1)
        with source.superuser("shop") as connection:
            (target,) = connection.execute(
                "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC',"
                " 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
            ).fetchone()
            at_target = dict(connection.execute(ORDERS_SQL).fetchall())
        report.step(
            "before target",
            f"{len(placed_before)} orders placed ({ids(placed_before)}), "
            f"{len(at_target)} orders in all",
        )
        report.step("target", target)
        # Commit times are microseconds: a moment between keeps the two
        # batches apart whatever the clock's resolution.
        time.sleep(0.2)
        placed_after = place_orders(source, after, seed=2)
        report.step(
            "after target", f"{len(placed_after)} orders placed ({ids(placed_after)})"
        )

        with source.superuser("shop") as connection:
            connection.execute("SET ROLE shop_owner")
            connection.execute("TRUNCATE orders_order CASCADE")
        left = len(orders_of(source))
        report.step(
            "mistake", f"TRUNCATE orders_order CASCADE as shop_owner: {left} left"
        )
        # The WAL past the target, the mistake included, into the
        # repository: a switch, and a wait until the segment is there.
        repo.run("check")
        source.stop()

        restore_into(repo, restored, target)
        restored.start()
        wait_promoted(restored)
        found = orders_of(restored)
        report.step("restored", f"{len(found)} orders in the new cluster")
        report.step("recovery", recovery_stop(restored))
        report.problems = compare(report, at_target, placed_before, placed_after, found)
        report.step("result", f"passed in {time.monotonic() - started:.0f} s")
        return report
    finally:
        restored.destroy()
        source.destroy()


def restore_into(repo: Repository, cluster: ScratchCluster, target: str) -> None:
    """pgbackrest restore of the last backup into a new cluster, to `target`."""
    # The directory and its owner file, so that sweep_orphans() removes
    # what a killed drill leaves; pgbackrest makes the data directory.
    cluster.prepare_home()
    repo.run(
        "restore",
        f"--pg1-path={cluster.datadir}",
        "--type=time",
        f"--target={target}",
        # Open for writes once there: this is the cluster the shop moves to.
        "--target-action=promote",
    )
    # The restored settings are the source's: its port and socket come from
    # start()'s command line; its archive_command would push this new
    # timeline into the source's stanza.
    cluster.configure({"archive_mode": "off"})


def recovery_stop(cluster: ScratchCluster) -> str:
    """The server's own line on where replay stopped, from its log."""
    for line in cluster.log_text().splitlines():
        if "recovery stopping" in line:
            # The log line's prefix (time, pid) is the server's, not ours.
            return line.split("LOG:", 1)[-1].strip()
    raise DrillFailed(
        f"the restored cluster never stopped at the target; see {cluster.log_path}"
    )


def wait_promoted(cluster: ScratchCluster, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with cluster.superuser() as connection:
                (recovering,) = connection.execute(
                    "SELECT pg_is_in_recovery()"
                ).fetchone()
            if not recovering:
                return
        except Exception:  # still starting up
            pass
        time.sleep(0.2)
    raise DrillFailed(f"the restored cluster did not promote; see {cluster.log_path}")


def compare(report, at_target, placed_before, placed_after, found) -> dict:
    missing = sorted(set(at_target) - set(found))
    extra = sorted(set(found) - set(at_target))
    wrong = sorted(i for i in set(at_target) & set(found) if at_target[i] != found[i])
    late = sorted(set(placed_after) & set(found))
    unacked = sorted(i for i in placed_before if found.get(i) != placed_before[i])
    report.step(
        "check",
        f"the {len(at_target)} orders at the target, by id and total: "
        + ("match" if not (missing or extra or wrong) else "DIFFER"),
    )
    report.step(
        "check",
        f"the {len(placed_before)} acknowledged before it: "
        + ("all there" if not unacked else f"{len(unacked)} missing or changed"),
    )
    report.step(
        "check",
        f"the {len(placed_after)} placed after it: "
        + ("none there" if not late else f"{len(late)} there"),
    )
    report.compared = True
    problems = {
        "missing": missing,
        "not at the target": extra,
        "other total": wrong,
        "placed after the target": late,
        "acknowledged but lost": unacked,
    }
    problems = {name: found for name, found in problems.items() if found}
    if problems:
        raise DrillFailed(f"the restore differs: {problems}")
    return problems
