"""peer-corpus convert: MariaDB's own .test files -> plain SQL databases in tests/fixtures/peer-corpus.

Each chosen test file is read as mysqltest (mysqltest.py), its statements filtered (objects are
kept: no DROP; nothing that touches another database, global state, files or other
connections), then executed one by one in a scratch database on a real server; only the
statements that succeed are written, in order. That is repeated on a fresh scratch database with
the kept statements alone until every one of them succeeds, so a corpus file always loads
cleanly with `mariadb --binary-mode --default-character-set=latin1 DB < FILE`.
"""

import bisect
import os
import re
import subprocess
import sys
import tempfile

from . import db
from .mysqltest import Reader

TEST_ROOT = "/usr/share/mysql/mysql-test"
MAX_TABLES = 40
MAX_ROWS_PER_STATEMENT = 10000
MAX_STATEMENTS = 4000

# (suite, test) in the order written; the file is suite/<suite>/t/<test>.test (main: main/).
CHOSEN = [
    ("main", t) for t in [
        "type_year", "type_enum", "type_set", "type_bit", "type_bit_innodb", "type_date",
        "type_datetime", "type_datetime_hires", "type_time", "type_time_hires", "type_timestamp",
        "type_timestamp_hires", "type_decimal", "type_newdecimal", "type_float", "type_blob",
        "type_varchar", "type_uint", "type_json", "type_binary", "type_temporal_innodb",
        "ctype_utf8mb4", "ctype_latin1", "ctype_cp1251", "ctype_ucs", "ctype_utf16", "ctype_utf32",
        "ctype_sjis", "ctype_binary",
        "ctype_collate", "gis", "gis-rtree", "gis-json", "partition_range", "partition_list",
        "partition_innodb", "sp", "sp-vars", "trigger", "trigger_null", "view", "dyncol",
        "invisible_field", "column_compression", "keywords", "events_1", "events_bugs",
    ]
] + [
    ("rpl", t) for t in [
        "rpl_row_basic_11bugs", "rpl_row_blob_innodb", "rpl_row_4_bytes", "rpl_row_basic_3innodb",
        "rpl_row_basic_8partition", "rpl_row_triggers", "rpl_row_index_choice",
        "rpl_row_tabledefs_3innodb", "rpl_row_sp002_innodb", "rpl_row_create_table",
    ]
] + [
    ("gcol", t) for t in [
        "gcol_ins_upd_innodb", "gcol_keys_innodb", "gcol_select_innodb", "gcol_view_innodb",
        "gcol_trigger_sp_innodb", "gcol_partition_innodb", "gcol_column_def_options_innodb",
        "gcol_supported_sql_funcs_innodb", "innodb_virtual_basic",
    ]
] + [
    ("period", t) for t in ["create", "delete", "update", "overlaps", "long_unique"]
] + [
    ("versioning", t) for t in [
        "create", "insert", "update", "delete", "alter", "partition", "select", "foreign",
        "autoinc", "data",
    ]
] + [
    ("sql_sequence", t) for t in ["create", "next", "default", "rename", "auto_increment", "view",
                                  "alter", "setval", "other"]
]


def test_path(suite, test):
    if suite == "main":
        return os.path.join(TEST_ROOT, "main", test + ".test")
    if suite == "sql_sequence":
        return os.path.join(TEST_ROOT, "suite", suite, test + ".test")
    return os.path.join(TEST_ROOT, "suite", suite, "t", test + ".test")


def corpus_name(suite, test):
    return f"{suite}__{test}"


# ---- filtering --------------------------------------------------------------------------------

OTHER_DB = re.compile(
    r"(?<![\w.])`?(mysql|information_schema|performance_schema|sys|test|mysqltest\w*|db\d*|"
    r"d\d|test_\w+|bug\w*)`?\s*\.\s*[`\w]", re.I)


def first_words(stmt, n=3):
    s = re.sub(r"^(\s|/\*.*?\*/)+", "", stmt, flags=re.S)
    return [w.lower() for w in re.findall(r"[A-Za-z_@][\w@.]*", s)[:n]]


def classify(stmt, engines):
    """A reason to drop the statement before running it, or None to try it."""
    w = first_words(stmt, 4)
    s = stmt.lower()
    if not w:
        return "not SQL"
    head = w[0]
    if head == "drop" and len(w) > 1:
        kind = w[1] if w[1] != "temporary" else "table"
        if kind in ("table", "tables", "view", "procedure", "function", "trigger", "database",
                    "schema", "sequence", "event", "package", "user", "role", "server"):
            return "DROP (objects are kept)"
        if kind == "if":
            return "DROP (objects are kept)"
    if head in ("use", "flush", "kill", "lock", "unlock", "shutdown", "install", "uninstall",
                "grant", "revoke", "purge", "reset", "change", "start", "stop", "xa", "binlog",
                "backup", "cache", "load", "handler", "begin", "commit", "rollback", "savepoint",
                "release", "prepare", "execute", "deallocate", "rename") and not (
                    head == "rename" and len(w) > 1 and w[1] == "table"):
        if head == "start" and len(w) > 1 and w[1] == "transaction":
            return "transaction control"
        return f"{head.upper()} (server state, files or sessions)"
    if head == "create" and any(x in w[1:3] for x in ("database", "schema", "user", "role", "server")):
        return "CREATE DATABASE/USER"
    if head in ("select", "show", "explain", "describe", "desc", "check", "checksum", "analyze",
                "optimize", "repair", "help", "do", "values", "table", "with", "(") :
        if not re.search(r"nextval|setval|next\s+value\s+for|into\s+@|:=|get_lock", s):
            return "read-only"
    if head == "set":
        if re.search(r"\bglobal\b|@@global|sql_log_bin|binlog_format|debug|pseudo_|gtid|"
                     r"server_id|skip_replication|autocommit|\btransaction\b|password|role\b|"
                     r"default_role|wsrep|session_track|max_statement_time|lock_wait|"
                     r"insert_id|last_insert_id|rand_seed", s):
            return "SET of server or binlog state"
    if re.search(r"into\s+(out|dump)file|load_file|load\s+data|load\s+xml|sleep\s*\(|"
                 r"benchmark\s*\(|get_lock|release_lock|master_pos_wait|binlog_gtid_pos", s):
        return "files, sleeps or locks"
    if OTHER_DB.search(stmt):
        return "names another database"
    if re.search(r"\bdata\s+directory\b|\bindex\s+directory\b", s):
        return "DATA/INDEX DIRECTORY"
    for m in re.finditer(r"\bengine\s*=?\s*[`'\"]?(\w+)", s):
        if m.group(1) not in engines:
            return f"engine {m.group(1)} not available"
    if re.search(r"\$\w", stmt):
        return "mysqltest variable left in a statement"
    return None


# ---- executing --------------------------------------------------------------------------------

def choose_delimiter(stmt):
    for d in (";;", "//", "$$", "%%PC%%"):
        if d not in stmt:
            return d
    raise ValueError("no delimiter fits")


def needs_delimiter(stmt):
    return ";" in stmt


def render(stmts):
    """The statements as a mariadb client script; returns (text, start line of each)."""
    out = []
    starts = []
    line = 1
    for stmt in stmts:
        if needs_delimiter(stmt):
            d = choose_delimiter(stmt)
            out.append(f"DELIMITER {d}")
            line += 1
            starts.append(line)
            out.append(stmt + d)
            line += stmt.count("\n") + 1
            out.append("DELIMITER ;")
            line += 1
        else:
            starts.append(line)
            out.append(stmt + ";")
            line += stmt.count("\n") + 1
    return "\n".join(out) + "\n", starts


def execute(conn, database, stmts):
    """Runs stmts in order in `database` (fresh), returns (failed indexes, row counts)."""
    db.recreate(conn, database)
    prefix = "SET SESSION max_statement_time=20;"
    script_stmts = []
    markers = []
    for k, st in enumerate(stmts):
        script_stmts.append(st)
        markers.append(len(script_stmts) - 1)
        script_stmts.append(f"SELECT 'PCMARK',{k},ROW_COUNT()")
    text, starts = render(script_stmts)
    text = prefix + "\n" + text
    starts = [s + 1 for s in starts]
    p = subprocess.run(
        db.client_args(conn, database) + ["--force", "--batch", "--skip-column-names"],
        input=text.encode("latin1"), capture_output=True, timeout=900)
    failed = set()
    # the client names the line where the statement's text begins (after any leading comment):
    # the statement is the last one starting at or before it
    stmt_starts = [starts[markers[k]] for k in range(len(stmts))]
    for m in re.finditer(rb"^ERROR \d+ \(\w+\) at line (\d+)", p.stderr, re.M):
        k = bisect.bisect_right(stmt_starts, int(m.group(1))) - 1
        if k >= 0:
            failed.add(k)
    rows = {}
    for m in re.finditer(rb"^PCMARK\t(\d+)\t(-?\d+)$", p.stdout, re.M):
        rows[int(m.group(1))] = int(m.group(2))
    # a statement with no marker after it did not finish (the client lost the connection)
    for k in range(len(stmts)):
        if k not in rows:
            failed.add(k)
    return failed, rows


def is_create_table(stmt):
    w = first_words(stmt, 6)
    if not w or w[0] != "create":
        return False
    w = [x for x in w[1:] if x not in ("or", "replace")]
    if w and w[0] == "temporary":
        return False
    return bool(w) and w[0] in ("table", "sequence")


def convert_one(conn, suite, test, engines, scratch):
    path = test_path(suite, test)

    def evaluate(query):
        try:
            return db.query_value(conn, None, query)
        except Exception:
            return None

    reader = Reader(TEST_ROOT, evaluate)
    reader.read_file(path)
    dropped = dict(reader.dropped)
    tried = []
    for st in reader.statements:
        reason = classify(st, engines)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            tried.append(st)
    parsed = len(reader.statements)
    candidates = tried[:MAX_STATEMENTS]
    if len(tried) > MAX_STATEMENTS:
        dropped["over the statement cap"] = len(tried) - MAX_STATEMENTS
    failed_total = 0
    capped = 0
    big = 0
    for _round in range(6):
        failed, rows = execute(conn, scratch, candidates)
        kept = []
        tables = 0
        for k, st in enumerate(candidates):
            if k in failed:
                failed_total += 1
                continue
            if rows.get(k, 0) > MAX_ROWS_PER_STATEMENT:
                big += 1
                continue
            if is_create_table(st):
                if tables >= MAX_TABLES:
                    capped += 1
                    continue
                tables += 1
            kept.append(st)
        if len(kept) == len(candidates):
            break
        candidates = kept
    else:
        raise RuntimeError(f"{suite}/{test}: kept statements still fail after 6 rounds")
    if failed_total:
        dropped["failed on the server"] = failed_total
    if big:
        dropped[f"more than {MAX_ROWS_PER_STATEMENT} rows"] = big
    if capped:
        dropped[f"over {MAX_TABLES} tables"] = capped
    return candidates, parsed, dropped


def write_corpus(out_dir, suite, test, stmts, parsed, dropped):
    rel = os.path.relpath(test_path(suite, test), TEST_ROOT)
    header = [
        f"-- peer corpus database {corpus_name(suite, test)}",
        f"-- from MariaDB's test suite: mysql-test/{rel} (Debian mariadb-test)",
        "-- generated by scripts/peer-corpus convert; do not edit",
        f"-- statements: {parsed} read, {len(stmts)} kept",
        "-- dropped: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())),
        "-- load: mariadb --binary-mode --default-character-set=latin1 DB < THIS_FILE",
    ]
    text, _ = render(stmts)
    data = ("\n".join(header) + "\n" + text).encode("latin1")
    path = os.path.join(out_dir, corpus_name(suite, test) + ".sql")
    with open(path, "wb") as f:
        f.write(data)
    return path


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="peer-corpus convert")
    ap.add_argument("--out", default=None)
    ap.add_argument("names", nargs="*", help="suite__test names (default: all chosen)")
    args = ap.parse_args(argv)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out_dir = args.out or os.path.join(repo, "tests", "fixtures", "peer-corpus")
    os.makedirs(out_dir, exist_ok=True)
    with db.server() as conn:
        engines = db.engines(conn)
        chosen = [c for c in CHOSEN if not args.names or corpus_name(*c) in args.names]
        for suite, test in chosen:
            stmts, parsed, dropped = convert_one(conn, suite, test, engines, "peer_corpus_gen")
            if not stmts:
                stale = os.path.join(out_dir, corpus_name(suite, test) + ".sql")
                if os.path.exists(stale):
                    os.remove(stale)
                print(f"{corpus_name(suite, test)}: {parsed} read, nothing kept: not written",
                      flush=True)
                continue
            path = write_corpus(out_dir, suite, test, stmts, parsed, dropped)
            print(f"{corpus_name(suite, test)}: {parsed} read, {len(stmts)} kept -> {os.path.relpath(path, repo)}",
                  flush=True)
        db.drop(conn, "peer_corpus_gen")
    if not args.names:
        wanted = {corpus_name(*c) + ".sql" for c in CHOSEN}
        for f in sorted(os.listdir(out_dir)):
            if f.endswith(".sql") and f not in wanted:
                os.remove(os.path.join(out_dir, f))
                print(f"{f}: no longer chosen, removed", flush=True)
    return 0
