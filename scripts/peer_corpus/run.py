"""peer-corpus run: backup/restore and binlog replay fidelity of toc-backup on the peer corpus.

For every database of tests/fixtures/peer-corpus:
  a. round trip: load into X, dump, restore into Y, compare X and Y;
  b. replay from empty: full backup of an empty X2, load the corpus into X2, binlog archive,
     restore --at now into Y2, compare X2 and Y2;
  c. replay after changes: full backup of the loaded X2 (a second store), update and delete rows
     of every base table, archive both stores, restore --at now into Y3 (from the empty full
     backup) and Y4 (from the loaded one), compare each with X2.
One line per database and phase, then a summary; exit 1 unless everything is exact or refused.
"""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from . import db
from .db import quote_ident as q

REPO = db.REPO
CORPUS = os.path.join(REPO, "tests", "fixtures", "peer-corpus")
# --fast (the CI test's subset): small databases exact in every phase on the tool of 2026-12-05
FAST = ["main__type_bit", "main__type_float", "main__type_timestamp_hires", "main__ctype_utf16",
        "main__partition_range", "gcol__gcol_keys_innodb"]
# The archive connects as a replica; on a server other jobs archive from too (the test suite's),
# a server id of its own keeps the server from refusing a second replica with the same id.
REPLICA_SERVER_ID = str(400000 + os.getpid() % 100000)
PHASES = ["round trip", "replay from empty", "replay after changes (from empty full)",
          "replay after changes (from loaded full)"]
TIMEOUT = int(os.environ.get("PEER_TIMEOUT", "300"))  # seconds for one toc-backup command
REFUSED = re.compile(r"refus|not supported|unsupported|cannot be (backed up|replayed|restored)"
                     r"|cannot remove history rows", re.I)


def toc_backup():
    exe = os.environ.get("TOC_BACKUP") or os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "debug", "toc-backup")
    if not os.path.exists(exe):
        sys.exit(f"peer-corpus: {exe} not found: build it with `cargo build --bin toc-backup` "
                 "(or set TOC_BACKUP)")
    return exe


class Failure(Exception):
    def __init__(self, kind, line, log=None):
        super().__init__(line)
        self.kind = kind  # "refused" or "error"
        self.line = line
        self.log = log


def tool(conn, args, log_path, what):
    env = conn.env()
    if conn.password:
        env["DATABASE_PASSWORD"] = conn.password
    env["LOG_FORMAT"] = "human"
    env.pop("RESTORE_AT", None)
    env.pop("BACKUP_ID", None)
    try:
        p = subprocess.run([toc_backup()] + args, capture_output=True, text=True, env=env,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        with open(log_path, "a") as f:
            f.write(f"$ toc-backup {' '.join(args)}\n[killed after {TIMEOUT} s]\n\n")
        raise Failure("error", f"{what}: did not finish in {TIMEOUT} s (killed; "
                               "PEER_TIMEOUT sets the limit)", log_path) from e
    with open(log_path, "a") as f:
        f.write(f"$ toc-backup {' '.join(args)}\n{p.stdout}{p.stderr}\n[exit {p.returncode}]\n\n")
    if p.returncode != 0:
        lines = [line for line in (p.stderr + p.stdout).splitlines() if line.strip()]
        errs = [line[len("error: "):] for line in lines if line.startswith("error: ")]
        errs += [line for line in lines if " ERROR " in line or "error" in line.lower()]
        first = (errs or lines or ["(no output)"])[0].strip()
        first = re.sub(r"\x1b\[[0-9;]*m", "", first)
        kind = "refused" if REFUSED.search(first) else "error"
        raise Failure(kind, f"{what}: {first}", log_path)
    return p.stdout


def load(conn, database, path):
    with open(path, "rb") as f:
        p = subprocess.run(db.client_args(conn, database), stdin=f, capture_output=True,
                           timeout=600)
    if p.returncode != 0:
        lines = p.stderr.decode("latin1").strip().splitlines()
        errs = [line for line in lines if line.startswith("ERROR")] or lines or ["?"]
        raise Failure("error", "loading the corpus: " + errs[0])


# ---- the picture of a database ---------------------------------------------------------------

def objects(conn, database):
    lit = "'" + database.replace("'", "''") + "'"
    rows = db.run_sql(conn, None, f"""
SELECT 'T', TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA={lit};
SELECT 'R', ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA={lit};
SELECT 'G', TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA={lit};
SELECT 'E', EVENT_NAME, '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA={lit};
SELECT 'C', TABLE_NAME, COLUMN_NAME, IS_GENERATED, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA={lit}
  ORDER BY TABLE_NAME, ORDINAL_POSITION;
""")
    return rows


def picture(conn, database):
    """{facet: text}: everything compared, with the database's name taken out."""
    rows = objects(conn, database)
    tables = sorted((r[1], r[2]) for r in rows if r[0] == "T")
    columns = {}
    virtual = set()
    for r in rows:
        if r[0] == "C":
            columns.setdefault(r[1], []).append(r[2])
            if r[3] == "ALWAYS" or "GENERATED" in r[4].upper():
                virtual.add(r[1])
    script = []
    for name, kind in tables:
        t = q(name)
        if kind in ("BASE TABLE", "SYSTEM VERSIONED"):
            script.append((f"create table {name}", f"SHOW CREATE TABLE {t}"))
            script.append((f"rows of {name}", f"SELECT COUNT(*) FROM {t}"))
            # CHECKSUM TABLE of a table with generated columns (VIRTUAL or STORED) is not
            # stable: the same table, rows unchanged, checksums differently from one moment to
            # the next (seen on 10.11, gcol_select's `C`). Such tables are compared by their
            # rows' values only
            if name not in virtual:
                script.append((f"checksum of {name}", f"CHECKSUM TABLE {t} EXTENDED"))
            cols = ",".join(f"IFNULL(HEX(CONCAT({q(c)})),'N')" for c in columns.get(name, []))
            script.append((f"content of {name}",
                           f"SELECT SUM(CRC32(CONCAT_WS('|',{cols}))) FROM {t}"))
            if kind == "SYSTEM VERSIONED":
                script.append((f"history of {name}",
                               f"SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|',{cols}))) "
                               f"FROM {t} FOR SYSTEM_TIME ALL"))
        elif kind == "VIEW":
            script.append((f"view {name}", f"SHOW CREATE VIEW {t}"))
        elif kind == "SEQUENCE":
            script.append((f"sequence {name}", f"SHOW CREATE SEQUENCE {t}"))
            script.append((f"sequence state of {name}", f"SELECT * FROM {t}"))
        else:
            script.append((f"table {name} of type {kind}", "SELECT 1"))
    for r in sorted(x for x in rows if x[0] == "R"):
        script.append((f"{r[2].lower()} {r[1]}", f"SHOW CREATE {r[2]} {q(r[1])}"))
    for r in sorted(x for x in rows if x[0] == "G"):
        script.append((f"trigger {r[1]}", f"SHOW CREATE TRIGGER {q(r[1])}"))
    for r in sorted(x for x in rows if x[0] == "E"):
        script.append((f"event {r[1]}", f"SHOW CREATE EVENT {q(r[1])}"))
    text = []
    for k, (facet, sql) in enumerate(script):
        text.append(f"SELECT 'PCSEC{k}';")
        text.append(sql + ";")
    p = subprocess.run(db.client_args(conn, database) + ["--batch", "--skip-column-names",
                                                          "--force"],
                       input="\n".join(text).encode("latin1"), capture_output=True, timeout=600)
    out = p.stdout.decode("latin1")
    result = {facet: "" for facet, _ in script}
    current = None
    for line in out.split("\n"):
        m = re.fullmatch(r"PCSEC(\d+)", line)
        if m:
            current = script[int(m.group(1))][0]
            continue
        if current is not None and line:
            result[current] += normalise(line, database) + "\n"
    return result


DEFINER = re.compile(r"DEFINER=`[^`]*`@`[^`]*` ?")
TRIGGER_CREATED = re.compile(r"\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d\d$")
# A restore into another database creates events DISABLE, by design (a copy's events never
# run; tests/it/round_trip.rs and binlog.rs check that): their status is not compared.
EVENT_STATUS = re.compile(r"(ON COMPLETION (?:NOT )?PRESERVE) (?:ENABLE|DISABLE ON SLAVE|DISABLE)\b")


def normalise(line, database):
    line = line.replace(q(database) + ".", "`DB`.").replace(database + ".", "DB.")
    line = DEFINER.sub("", line)
    line = re.sub(r" AUTO_INCREMENT=\d+", "", line)
    line = TRIGGER_CREATED.sub("", line)  # SHOW CREATE TRIGGER's Created column
    line = EVENT_STATUS.sub(r"\1 (status)", line)
    return line


def compare(conn, a, b):
    """None when equal, else the list of facets that differ (with a short why)."""
    pa, pb = picture(conn, a), picture(conn, b)
    diffs = []
    for facet in sorted(set(pa) | set(pb)):
        if facet not in pb:
            diffs.append(("missing", facet, pa[facet], ""))
        elif facet not in pa:
            diffs.append(("extra", facet, "", pb[facet]))
        elif pa[facet] != pb[facet]:
            diffs.append(("differs", facet, pa[facet], pb[facet]))
    return diffs


# SHOW CREATE …'s character_set_client and collation_connection columns, by object kind
CHARSET_FIELDS = {"view": (2, 3), "procedure": (3, 4), "function": (3, 4), "trigger": (3, 4),
                  "event": (4, 5)}


def charset_only(facet, a, b):
    """True when a view/routine/trigger/event differs only in its client character set."""
    fields = CHARSET_FIELDS.get(facet.split(" ")[0])
    if not fields:
        return False

    def strip(text):
        return [[f for k, f in enumerate(line.split("\t")) if k not in fields]
                for line in text.split("\n")]
    return strip(a) == strip(b)


def facet_class(kind, facet, a="", b=""):
    word = facet.split(" of ")[0] if " of " in facet else facet.split(" ")[0]
    if kind != "differs":
        return f"{kind} {facet.split(' ')[0]}"
    if charset_only(facet, a, b):
        return "character_set_client/collation_connection of views, routines, triggers, events"
    return "definition of " + word if word in CHARSET_FIELDS else word


def describe(diffs, limit=4):
    parts = []
    for kind, facet, a, b in diffs[:limit]:
        if kind == "differs" and charset_only(facet, a, b):
            facet += " (client character set only)"
        parts.append(facet if kind == "differs" else f"{kind} {facet}")
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return ", ".join(parts) + more


# ---- changes for phase c ---------------------------------------------------------------------

def change_rows(conn, database):
    """Changes a value in every row of every base table where it can, and deletes a third."""
    lit = "'" + database.replace("'", "''") + "'"
    rows = db.run_sql(conn, None, f"""
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.IS_GENERATED, c.EXTRA,
       c.COLUMN_KEY
FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA=c.TABLE_SCHEMA AND t.TABLE_NAME=c.TABLE_NAME
WHERE c.TABLE_SCHEMA={lit} AND t.TABLE_TYPE IN ('BASE TABLE','SYSTEM VERSIONED')
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION""")
    by_table = {}
    for name, col, dtype, ctype, generated, extra, key in rows:
        by_table.setdefault(name, [])
        if generated != "NEVER" or "row start" in extra.lower() or "row end" in extra.lower():
            continue
        expr = changed_value(q(col), dtype.lower(), ctype.lower())
        if expr:
            by_table[name].append((key != "", col, expr))
    script = ["SET SESSION foreign_key_checks=1;"]
    for name in sorted(by_table):
        t = q(name)
        cols = sorted(by_table[name])[:2]  # columns outside keys first
        for _, col, expr in cols:
            script.append(f"UPDATE IGNORE {t} SET {q(col)} = {expr};")
        script.append(f"SET @n = (SELECT COUNT(*) DIV 3 FROM {t});")
        script.append(f"SET @s = CONCAT('DELETE FROM {t.replace(chr(39), chr(39) * 2)} "
                      f"LIMIT ', @n); PREPARE s FROM @s; EXECUTE s; DEALLOCATE PREPARE s;")
    p = subprocess.run(db.client_args(conn, database) + ["--batch", "--force"],
                       input="\n".join(script).encode("latin1"), capture_output=True,
                       timeout=600)
    return len(by_table), p.stderr.decode("latin1").count("ERROR")


def changed_value(c, dtype, ctype):
    if dtype in ("tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float",
                 "double"):
        return f"IF({c} > 0, {c} - 1, {c} + 1)"
    if dtype == "bit":
        return f"{c} ^ 1"
    if dtype in ("char", "varchar", "text", "tinytext", "mediumtext", "longtext"):
        return f"IF({c} = '' OR {c} IS NULL, 'pc', CONCAT(LEFT({c}, CHAR_LENGTH({c}) - 1), " \
               f"IF(RIGHT({c}, 1) = 'z', 'y', 'z')))"
    if dtype in ("binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"):
        return f"IF({c} = '' OR {c} IS NULL, 'pc', CONCAT(LEFT({c}, LENGTH({c}) - 1), " \
               f"IF(RIGHT({c}, 1) = 'z', 'y', 'z')))"
    if dtype in ("date", "datetime", "timestamp"):
        return f"{c} + INTERVAL 1 DAY"
    if dtype == "time":
        return f"ADDTIME({c}, '00:00:01')"
    if dtype == "year":
        return f"IF({c} < 2100, {c} + 1, {c} - 1)"
    return None


# ---- one database ------------------------------------------------------------------------------

def short(name):
    s = re.sub(r"\W", "_", name)
    return s[:50]


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_one(conn, name, work):
    """Yields (phase, status, detail, diffs)."""
    path = os.path.join(CORPUS, name + ".sql")
    base = short(name)
    x, y, x2, y2, y3, y4 = (f"{base}_{s}" for s in ("x", "y", "x2", "y2", "y3", "y4"))
    wdir = os.path.join(work, name)
    shutil.rmtree(wdir, ignore_errors=True)
    for sub in ("store-a", "store-b", "store-c"):
        os.makedirs(os.path.join(wdir, sub))
    log = os.path.join(wdir, "toc-backup.log")
    for d in (x, y, x2, y2, y3, y4):
        db.drop(conn, d)
    url = conn.url

    # a. round trip
    try:
        db.recreate(conn, x)
        load(conn, x, path)
        store = os.path.join(wdir, "store-a")
        tool(conn, ["dump", "--database-url", url + x, "--store", store, "--no-prune"], log,
             "dump")
        tool(conn, ["restore", "--database-url", url, "--store", store, "--target-database", y],
             log, "restore")
        yield result(conn, PHASES[0], x, y)
    except Failure as e:
        yield (PHASES[0], e.kind, e.line, [])

    # b. replay from empty
    store_b = os.path.join(wdir, "store-b")
    store_c = os.path.join(wdir, "store-c")
    loaded = False
    try:
        db.recreate(conn, x2)
        tool(conn, ["dump", "--database-url", url + x2, "--store", store_b, "--no-prune"], log,
             "dump of the empty database")
        load(conn, x2, path)
        loaded = True
        tool(conn, ["binlog", "archive", "--database-url", url + x2, "--store", store_b,
                    "--replica-server-id", REPLICA_SERVER_ID], log,
             "binlog archive")
        time.sleep(1.1)
        tool(conn, ["restore", "--database-url", url, "--store", store_b, "--at", now_utc(),
                    "--target-database", y2], log, "restore --at")
        yield result(conn, PHASES[1], x2, y2)
    except Failure as e:
        yield (PHASES[1], e.kind, e.line, [])
        if not loaded:
            for ph in PHASES[2:]:
                yield (ph, e.kind, "(replay from empty failed) " + e.line, [])
            return

    # c. replay after changes
    loaded_full = None
    try:
        tool(conn, ["dump", "--database-url", url + x2, "--store", store_c, "--no-prune"], log,
             "dump of the loaded database")
    except Failure as e:
        loaded_full = e
    tables, errors = change_rows(conn, x2)
    with open(log, "a") as f:
        f.write(f"changes: {tables} tables, {errors} statements failed\n")
    for phase, store, target in ((PHASES[2], store_b, y3), (PHASES[3], store_c, y4)):
        if store == store_c and loaded_full is not None:
            yield (phase, loaded_full.kind, loaded_full.line, [])
            continue
        try:
            tool(conn, ["binlog", "archive", "--database-url", url + x2, "--store", store,
                        "--replica-server-id", REPLICA_SERVER_ID], log,
                 "binlog archive")
            time.sleep(1.1)
            tool(conn, ["restore", "--database-url", url, "--store", store, "--at", now_utc(),
                        "--target-database", target], log, "restore --at")
            yield result(conn, phase, x2, target)
        except Failure as e:
            yield (phase, e.kind, e.line, [])


def broken_in_source(conn, database, facet):
    """True when `facet` is a view the source's server cannot use (ERROR 1356 and the like):
    the dump leaves such a view out with a warning, since no restore could create it."""
    if not facet.startswith("view "):
        return False
    name = facet[len("view "):]
    try:
        db.run_sql(conn, database, f"SELECT 1 FROM {q(name)} LIMIT 0")
        return False
    except db.SQLError:
        return True


def result(conn, phase, a, b):
    diffs = compare(conn, a, b)
    left_out = [d[1] for d in diffs if d[0] == "missing" and broken_in_source(conn, a, d[1])]
    diffs = [d for d in diffs if d[1] not in left_out]
    if not diffs and left_out:
        return (phase, "refused", "broken in the source, left out with a warning: " +
                ", ".join(left_out), [])
    if not diffs:
        return (phase, "exact", "", [])
    return (phase, "differs", describe(diffs), diffs)


# ---- main ----------------------------------------------------------------------------------------

def main(argv):
    ap = argparse.ArgumentParser(prog="peer-corpus run")
    ap.add_argument("--fast", action="store_true", help=f"only {', '.join(FAST)}")
    ap.add_argument("--work", help="where stores, logs and diffs go (default: a temporary folder)")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    available = sorted(f[:-4] for f in os.listdir(CORPUS) if f.endswith(".sql"))
    names = args.names or (FAST if args.fast else available)
    unknown = [n for n in names if n not in available]
    if unknown:
        sys.exit(f"peer-corpus: no such corpus database: {', '.join(unknown)}")
    toc_backup()
    work = args.work or tempfile.mkdtemp(prefix="peer-corpus.")
    os.makedirs(work, exist_ok=True)
    print(f"# work folder (stores, toc-backup logs, diffs): {work}", flush=True)
    results = []
    with db.server() as conn:
        for name in names:
            for phase, status, detail, diffs in run_one(conn, name, work):
                results.append((name, phase, status, detail, diffs))
                line = f"{name:45} {phase:42} {status}" + (f": {detail}" if detail else "")
                print(line, flush=True)
                if diffs:
                    write_diff(work, name, phase, diffs)
    return summary(results, names)


def write_diff(work, name, phase, diffs):
    path = os.path.join(work, name, re.sub(r"\W+", "_", phase) + ".diff")
    with open(path, "w", encoding="latin1", errors="replace") as f:
        for kind, facet, a, b in diffs:
            f.write(f"== {kind}: {facet}\n-- source:\n{a}-- restored:\n{b}\n")


def summary(results, names):
    print()
    print("summary")
    for phase in PHASES:
        rs = [r for r in results if r[1] == phase]
        exact = sum(1 for r in rs if r[2] == "exact")
        refused = sum(1 for r in rs if r[2] == "refused")
        print(f"  {phase:42} {exact} of {len(names)} exact" +
              (f", {refused} refused" if refused else ""))
    classes = {}
    for name, phase, status, detail, diffs in results:
        if status == "exact":
            continue
        if status == "differs":
            keys = sorted({facet_class(k, f, a, b) for k, f, a, b in diffs})
            key = "differs: " + ", ".join(keys)
        else:
            d = re.sub(r"^\(replay from empty failed\) ", "", detail)
            d = re.split(r"; |\. The database is INCOMPLETE", d)[0]
            d = re.sub(r"\b(function|procedure|view|trigger|event|sequence|table) (`[^`]*` is "
                       r"not in the backup)", r"view/routine/trigger/event \2", d)
            d = re.sub(r"`[^`]*`|'[^']*'|\d+", "…", d)
            key = f"{status}: {d[:160]}"
        classes.setdefault(key, []).append(f"{name} ({phase})")
    if classes:
        print()
        print("failure classes")
        for key in sorted(classes, key=lambda k: (-len(classes[k]), k)):
            who = classes[key]
            print(f"  [{len(who)}] {key}")
            print("      " + "; ".join(who[:8]) + (f"; +{len(who) - 8} more" if len(who) > 8 else ""))
    bad = any(r[2] not in ("exact", "refused") for r in results)
    return 1 if bad else 0
