"""A reader for MariaDB's mysqltest language, good enough to pull the SQL out of a .test file.

Only what runs on the main connection, unconditionally, is kept: directives, `if`/`while`
blocks, `perl`/`write_file` blocks, statements after `--error`, statements on other
connections and `eval` statements whose `$variables` are unknown are dropped (and counted).
Text is handled as latin1 so that any byte survives unchanged (mysqltest's own default).
"""

import os
import re

# Commands of the mysqltest language (a line starting with one of these, when no statement is
# being read, is a command, not SQL). Written in their bare form; `--name` is the same command.
COMMANDS = {
    "append_file", "cat_file", "change_user", "character_set", "chmod", "connect", "connection",
    "copy_file", "copy_files_wildcard", "dec", "delimiter", "die", "diff_files", "dirty_close",
    "disable_abort_on_error", "disconnect", "echo", "enable_abort_on_error", "end_timer", "error",
    "eval", "exec", "exec_in_background", "execw", "exit", "file_exists", "horizontal_results",
    "if", "inc", "let", "list_files", "list_files_append_file", "list_files_write_file",
    "lowercase_result", "mkdir", "move_file", "output", "perl", "ping", "query",
    "query_attributes", "query_get_value", "query_horizontal", "query_vertical", "real_sleep",
    "reap", "remove_file", "remove_files_wildcard", "replace_column", "replace_numeric_round",
    "replace_regex", "replace_result", "require", "reset_connection", "result_format", "rmdir",
    "save_master_pos", "send", "send_eval", "send_quit", "send_shutdown", "shutdown_server",
    "skip", "sleep", "sorted_result", "partially_sorted_result", "source", "start_timer",
    "sync_slave_with_master", "sync_with_master", "system", "vertical_results", "wait_for_slave_to_stop",
    "while", "write_file", "assert", "sync_up", "single_query",
}
COMMAND_PREFIXES = ("disable_", "enable_")

# Connection names that are the test's main session (rpl tests work on `master`).
MAIN_CONNECTIONS = {"default", "master", "master1", "server_1", "con_master"}

TEST_QUALIFIER = re.compile(r"(?<![\w.`])`?test`?\.(?=[`\w])", re.I)
VAR_RE = re.compile(r"\$(\w+)")


def is_command_word(word):
    word = word.lower()
    return word in COMMANDS or word.startswith(COMMAND_PREFIXES)


class Counts(dict):
    def bump(self, key, n=1):
        self[key] = self.get(key, 0) + n


class Reader:
    def __init__(self, root, evaluate=None):
        self.root = root  # the mysql-test directory
        self.evaluate = evaluate  # callable(sql) -> str or None, for let $x= `query`
        self.vars = {}
        self.statements = []  # SQL text, in order
        self.dropped = Counts()
        self.connection = "default"
        self.expect_error = False
        self.send_pending = False

    # ---- variables -------------------------------------------------------------------------
    def expand(self, text):
        """Replaces $var by its known value; None when a variable is unknown."""
        unknown = []

        def sub(m):
            name = m.group(1)
            if name in self.vars:
                return self.vars[name]
            unknown.append(name)
            return m.group(0)

        out = VAR_RE.sub(sub, text)
        return None if unknown else out

    def do_let(self, body):
        m = re.match(r"\s*\$(\w+)\s*=(.*)$", body, re.S)
        if not m:
            return
        name, value = m.group(1), m.group(2).strip()
        if value.startswith("`") and value.endswith("`") and len(value) >= 2:
            query = self.expand(value[1:-1])
            result = self.evaluate(query) if (query is not None and self.evaluate) else None
            if result is None:
                self.vars.pop(name, None)
            else:
                self.vars[name] = result
            return
        if "query_get_value" in value.lower():
            self.vars.pop(name, None)
            return
        expanded = self.expand(value)
        if expanded is None:
            self.vars.pop(name, None)
        else:
            self.vars[name] = expanded

    # ---- reading ---------------------------------------------------------------------------
    def read_file(self, path, depth=0):
        with open(path, "rb") as f:
            text = f.read().decode("latin1")
        self.read_text(text, path, depth)

    def source(self, arg, depth):
        arg = arg.strip().rstrip(";").strip()
        arg = self.expand(arg)
        if arg is None:
            self.dropped.bump("source with unknown variable")
            return
        # The shared include/ files check prerequisites and set up replication; the suites'
        # own include files hold the tests' SQL (gcol's inc/, versioning's *.inc).
        # (the replication tests' bodies are include/rpl_*.test: those are read)
        if ((arg.startswith("include/") or "/include/" in arg) and not arg.endswith(".test")) \
                or depth >= 3:
            self.dropped.bump("source include/")
            return
        candidates = [os.path.join(self.root, arg), os.path.join(self.root, "main", arg)]
        candidates += [os.path.join(self.root, "suite", s, arg) for s in ("rpl", "binlog")]
        for c in candidates:
            if os.path.isfile(c):
                self.read_file(c, depth + 1)
                return
        self.dropped.bump("source not found")

    def read_text(self, text, path, depth):
        lines = text.split("\n")
        delimiter = ";"
        i = 0
        n = len(lines)
        while i < n:
            line = lines[i]
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                i += 1
                continue
            if stripped.startswith("--"):
                # `--directive args` or `-- directive args` (one line, no delimiter); `-- text`
                # whose first word is no command is a comment
                body = stripped[2:].lstrip()
                word = re.match(r"[A-Za-z_]\w*", body)
                word = word.group(0) if word else ""
                if not is_command_word(word):
                    i += 1
                    continue
                args = body[len(word):].strip()
                i = self.directive(word.lower(), args, lines, i + 1, depth, one_line=True)
                if isinstance(i, tuple):
                    i, new_delim = i
                    delimiter = new_delim
                continue
            head = re.match(r"[A-Za-z_]\w*", stripped)
            head = head.group(0).lower() if head else ""
            if stripped.startswith("}") or head in ("if", "while", "else"):
                i = self.skip_block(lines, i, "")
                self.dropped.bump("if/while block")
                continue
            # A statement or a bare command ends with the current delimiter.
            stmt, i = self.read_statement(lines, i, delimiter)
            if stmt is None:
                break
            first = re.match(r"\s*([A-Za-z_]\w*)", stmt)
            word = first.group(1).lower() if first else ""
            if word and is_command_word(word) and not self.sql_looking(word, stmt):
                args = stmt.strip()[len(word):].strip()
                if word in ("if", "while"):
                    i = self.skip_block(lines, i, stmt)
                    self.dropped.bump("if/while block")
                    continue
                r = self.directive(word, args, lines, i, depth, one_line=False)
                if isinstance(r, tuple):
                    i, delimiter = r
                else:
                    i = r
                continue
            self.add_statement(stmt)

    def sql_looking(self, word, stmt):
        """`connection` etc. never start SQL, but a few command words do (none today)."""
        return False

    def read_statement(self, lines, i, delimiter):
        """Reads from line i up to the delimiter (outside quotes and comments)."""
        buf = []
        quote = None
        n = len(lines)
        start = i
        while i < n:
            line = lines[i]
            j = 0
            L = len(line)
            while j < L:
                c = line[j]
                if quote:
                    if c == "\\" and quote != "`":
                        j += 2
                        continue
                    if c == quote:
                        quote = None
                    j += 1
                    continue
                if line.startswith(delimiter, j):
                    buf.append(line[:j])
                    rest = line[j + len(delimiter):]
                    if rest.strip():
                        # more on the same line: put it back as its own line
                        lines[i] = rest
                        return "\n".join(buf), i
                    return "\n".join(buf), i + 1
                if c in "'\"`":
                    quote = c
                elif c == "#":
                    # an SQL comment to the end of the line
                    break
                elif c == "-" and line.startswith("-- ", j):
                    break
                elif c == "/" and line.startswith("/*", j):
                    end = line.find("*/", j + 2)
                    if end >= 0:
                        j = end + 2
                        continue
                j += 1
            buf.append(line)
            i += 1
        if "".join(buf).strip():
            self.dropped.bump("unterminated at end of file")
        return None, n

    def skip_block(self, lines, i, header):
        """Skips an if/while block whose header (up to `{` perhaps) was read as `header`."""
        depth = header.count("{") - header.count("}")
        seen = "{" in header
        # the header was read up to the delimiter; the block's braces come after
        # (mysqltest: `if (cond)\n{\n...\n}`), the header itself usually holds no delimiter, so
        # read_statement ran into the block: count braces in what was consumed already.
        n = len(lines)
        if seen and depth <= 0:
            return i
        while i < n:
            s = lines[i]
            stripped = s.strip()
            if stripped.startswith("}"):
                s = stripped[1:]
                depth -= 1
                seen = True
            if not stripped.startswith("#"):
                depth += s.count("{") - s.count("}")
                if "{" in s:
                    seen = True
            i += 1
            if seen and depth <= 0:
                return i
        return n

    def skip_until(self, lines, i, terminator):
        n = len(lines)
        while i < n and lines[i].strip() != terminator:
            i += 1
        return min(i + 1, n)

    def directive(self, word, args, lines, i, depth, one_line):
        """Handles one command; returns the next line index (or (index, new delimiter))."""
        self.dropped.bump("directive")
        if word == "delimiter":
            return (i, args.strip())
        if word in ("error",):
            self.expect_error = True
            return i
        if word in ("let",):
            self.do_let(args)
            return i
        if word in ("inc", "dec"):
            m = re.match(r"\$(\w+)", args)
            if m and m.group(1) in self.vars:
                try:
                    v = int(self.vars[m.group(1)]) + (1 if word == "inc" else -1)
                    self.vars[m.group(1)] = str(v)
                except ValueError:
                    self.vars.pop(m.group(1), None)
            return i
        if word == "source":
            self.source(args, depth)
            return i
        if word == "connection":
            self.connection = args.strip().rstrip(";").strip()
            return i
        if word in ("sync_slave_with_master", "sync_with_master"):
            self.connection = args.strip() or "slave"
            return i
        if word in ("disconnect",):
            return i
        if word in ("if", "while"):
            # `--if` is rare; skip its block
            j = i
            return self.skip_block(lines, j, args)
        if word in ("perl", "write_file", "append_file"):
            term = "EOF"
            if word == "perl":
                m = re.match(r"(\w+)", args)
                if m:
                    term = m.group(1)
            else:
                parts = args.split()
                if len(parts) > 1:
                    term = parts[1].rstrip(";")
            return self.skip_until(lines, i, term)
        if word in ("send", "send_eval"):
            if args.strip():
                self.dropped.bump("send (asynchronous)")
                self.expect_error = False
            else:
                self.send_pending = True
            return i
        if word == "eval":
            if args.strip():
                expanded = self.expand(args)
                if expanded is None:
                    self.dropped.bump("eval with unknown variable")
                    self.expect_error = False
                else:
                    self.add_statement(expanded)
            return i
        if word in ("query", "query_vertical", "query_horizontal", "single_query"):
            if args.strip():
                self.add_statement(args)
            return i
        if word == "exit":
            return len(lines)
        return i

    def add_statement(self, stmt):
        stmt = stmt.strip()
        if not stmt:
            return
        if self.expect_error:
            self.expect_error = False
            self.dropped.bump("expected to fail (--error)")
            return
        if self.send_pending:
            self.send_pending = False
            self.dropped.bump("send (asynchronous)")
            return
        if self.connection not in MAIN_CONNECTIONS:
            self.dropped.bump("other connection")
            return
        # the test's own database is `test`: a name qualified by it is a name in this one
        stmt = TEST_QUALIFIER.sub("", stmt)
        self.statements.append(stmt)
