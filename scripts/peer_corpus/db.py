"""The server the corpus is built and measured on, reached with the `mariadb` client only."""

import contextlib
import os
import re
import subprocess
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Conn:
    def __init__(self, url):
        u = urllib.parse.urlparse(url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 3306
        self.user = urllib.parse.unquote(u.username or "root")
        self.password = urllib.parse.unquote(u.password) if u.password else os.environ.get(
            "DATABASE_PASSWORD")
        self.url = f"mysql://{urllib.parse.quote(self.user)}@{self.host}:{self.port}/"

    def env(self):
        env = dict(os.environ)
        if self.password:
            env["MYSQL_PWD"] = self.password
        return env


def client_args(conn, database=None):
    args = ["mariadb", "--no-defaults", f"--host={conn.host}", f"--port={conn.port}",
            f"--user={conn.user}", "--binary-mode", "--default-character-set=latin1"]
    if conn.password:
        args.append(f"--password={conn.password}")
    if database:
        args.append(database)
    return args


def run_sql(conn, database, sql, check=True, timeout=600):
    """Runs SQL (batch mode); returns stdout rows as lists of strings (latin1)."""
    p = subprocess.run(client_args(conn, database) + ["--batch", "--skip-column-names", "--raw"],
                       input=sql.encode("latin1"), capture_output=True, timeout=timeout)
    if check and p.returncode != 0:
        raise SQLError(p.stderr.decode("latin1").strip())
    out = p.stdout.decode("latin1")
    return [line.split("\t") for line in out.split("\n") if line != ""]


class SQLError(Exception):
    pass


def query_value(conn, database, sql):
    rows = run_sql(conn, database, sql)
    return rows[0][0] if rows and rows[0] else None


def quote_ident(name):
    return "`" + name.replace("`", "``") + "`"


def recreate(conn, database):
    run_sql(conn, None, f"DROP DATABASE IF EXISTS {quote_ident(database)}; "
                        f"CREATE DATABASE {quote_ident(database)}")


def drop(conn, database):
    run_sql(conn, None, f"DROP DATABASE IF EXISTS {quote_ident(database)}")


def engines(conn):
    rows = run_sql(conn, None, "SELECT LOWER(ENGINE) FROM information_schema.ENGINES "
                               "WHERE SUPPORT IN ('YES','DEFAULT')")
    return {r[0] for r in rows}


@contextlib.contextmanager
def server():
    """PEER_DATABASE_URL's server, or a private one started here and stopped after."""
    url = os.environ.get("PEER_DATABASE_URL")
    if url:
        yield Conn(url)
        return
    script = os.path.join(REPO, "scripts", "private-mariadb")
    p = subprocess.run([script, "start"], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("private-mariadb start failed: " + p.stderr.strip())
    values = dict(re.findall(r"export (\w+)='([^']*)'", p.stdout))
    try:
        yield Conn(values["TEST_DATABASE_URL"])
    finally:
        subprocess.run([script, "stop", values["PRIVATE_MARIADB_DIR"]], capture_output=True)
