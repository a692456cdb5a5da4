# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL command helpers: the one place where sec runs psql, pg_dump and pg_restore.

The modules that touch a site's database (db_backup, db_restore, trim, upgrade...) run the PostgreSQL
client tools on the App server with the credentials of the site's ``shared/config/database.yml``. This file
finds those tools, builds their arguments and runs them so that:

* the password never appears in an argument vector, a log line or a return value. It travels only in a
  temporary 0600 passfile (``PGPASSFILE``) that lives as long as the `PgClient` context and is removed
  afterwards, whatever happens;
* every command returns ``(rc, stdout, stderr, argv)``. ``argv`` holds no secret, so modules may return it
  so that users can see and rerun what was done;
* the client tools are new enough for the server (pg_dump refuses a newer server), with compression
  chosen from what this pg_dump build supports.

Pure standard library and Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

from ansible_collections.fpt.sec.plugins.module_utils.process import pid_alive
from ansible_collections.fpt.sec.plugins.module_utils.site_model import (
    read_database_config,
    read_database_password,
)

__all__ = [
    "CommandResult",
    "PgClient",
    "PostgresError",
    "binary_version",
    "compression_spec",
    "default_jobs",
    "derived_name",
    "find_binary",
    "parse_compression",
    "quote_ident",
    "quote_literal",
]

# Environment variables that would change which server, user, password or database the tools use behind
# our back. They are dropped from the tools' environment so that database.yml alone decides.
_PG_ENV_DROP = ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGHOST", "PGHOSTADDR", "PGPORT",
                "PGDATABASE", "PGUSER", "PGOPTIONS")
_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
# Where distributions keep versioned client tools off PATH: Debian/Ubuntu, then PGDG on RHEL.
_VERSIONED_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
# pg_dump compression methods by preference. zstd at level 1 compresses at lz4-like speed, far faster than
# the server streams COPY data, while staying close to gzip's default size; lz4 is as fast but larger.
# Both exist only from PostgreSQL 16 on, and only when the build has the library. gzip level 1 is the
# fastest gzip: the only choice on 15 and older.
_AUTO_PREFERENCE = ("zstd:1", "lz4", "gzip:1")
_COMPRESSION_RE = re.compile(r"^(?:(none|gzip|lz4|zstd)(?::(\d+))?|(\d))$")
_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names


class PostgresError(Exception):
    """A client tool is missing or unusable, or a command failed. ``str()`` is one line without secrets."""


class CommandResult:
    """What one command did: ``rc, stdout, stderr, argv`` (unpacks as a tuple) plus its duration."""

    __slots__ = ("argv", "duration", "rc", "stderr", "stdout")

    def __init__(self, rc: int, stdout: str, stderr: str, argv: list[str], duration: float) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.argv = argv
        self.duration = duration

    def __iter__(self):
        return iter((self.rc, self.stdout, self.stderr, self.argv))

    def last_error(self) -> str:
        """The last non-empty stderr line (the tools put the reason last), else a word about the rc."""
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.rc}"

    def errors(self, limit: int = 3) -> str:
        """Up to ``limit`` error lines on one line: enough to tell what failed, short enough to read."""
        lines = [line.strip() for line in self.stderr.splitlines()
                 if line.strip() and ("error" in line.lower() or "fatal" in line.lower())]
        return " | ".join(lines[:limit]) if lines else self.last_error()


# -- the client tools ---------------------------------------------------------------------------------------
_version_cache: dict[str, tuple[int, int]] = {}


def binary_version(path: str) -> tuple[int, int]:
    """(major, minor) that ``path --version`` reports, e.g. (15, 18)."""
    if path not in _version_cache:
        try:
            out = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                 timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresError(f"cannot run {path} --version: {exc}") from None
        match = _VERSION_RE.search(out)
        if not match:
            raise PostgresError(f"{path} --version did not report a PostgreSQL version: {out.strip()[:80]!r}")
        _version_cache[path] = (int(match.group(1)), int(match.group(2) or 0))
    return _version_cache[path]


def _versioned_dirs() -> list[str]:
    dirs = []
    for pattern in _VERSIONED_BIN_GLOBS:
        dirs.extend(glob.glob(pattern))

    def major(path: str) -> int:
        digits = re.findall(r"\d+", path)
        return int(digits[-1]) if digits else 0

    return sorted(dirs, key=major, reverse=True)


def find_binary(name: str, min_major: int | None = None) -> str:
    """The client tool ``name``: the one on PATH, then the newest versioned install.

    With ``min_major``, the first of those whose major version is at least that (pg_dump cannot dump a
    newer server, and pg_restore cannot read a newer archive).
    """
    candidates: list[str] = []
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    for folder in _versioned_dirs():
        path = os.path.join(folder, name)
        if os.access(path, os.X_OK) and path not in candidates:
            candidates.append(path)
    if not candidates:
        raise PostgresError(f"{name} not found on PATH nor in {' or '.join(_VERSIONED_BIN_GLOBS)}: install the "
                            "PostgreSQL client (postgresql-client)")
    if min_major is None:
        return candidates[0]
    found = []
    for path in candidates:
        major = binary_version(path)[0]
        if major >= min_major:
            return path
        found.append(f"{path} ({major})")
    raise PostgresError(f"{name} must be version {min_major} or newer for this server; found only "
                        f"{', '.join(found)}: install postgresql-client-{min_major}")


def default_jobs() -> int:
    """Parallel jobs for pg_dump/pg_restore: one per CPU, at most 4 (more mostly adds server load)."""
    return max(1, min(os.cpu_count() or 1, 4))


def parse_compression(text: str) -> tuple[str, int | None]:
    """``gzip:1`` → ("gzip", 1), ``lz4`` → ("lz4", None), ``5`` → ("gzip", 5), ``none`` → ("none", None)."""
    match = _COMPRESSION_RE.match((text or "").strip().lower())
    if not match:
        raise PostgresError(f"compression {text!r} is not one of auto, none, gzip[:1-9], lz4[:level], zstd[:level] "
                            "or a gzip level 0-9")
    if match.group(3) is not None:
        level = int(match.group(3))
        return ("none", None) if level == 0 else ("gzip", level)
    method, level = match.group(1), match.group(2)
    if method == "gzip" and level is not None and not 1 <= int(level) <= 9:
        raise PostgresError(f"gzip compression level must be 1 to 9, got {level}")
    return method, (int(level) if level is not None else None)


def compression_spec(method: str, level: int | None) -> str:
    return method if level is None else f"{method}:{level}"


# -- SQL quoting ----------------------------------------------------------------------------------------------
def quote_ident(name: str) -> str:
    """A safely quoted SQL identifier (database names come from config files and user input)."""
    if "\x00" in name:
        raise PostgresError("identifier contains a NUL byte")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    if "\x00" in text:
        raise PostgresError("literal contains a NUL byte")
    if "\\" in text:
        # E'' syntax means the same whatever standard_conforming_strings is set to.
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + text.replace("'", "''") + "'"


def derived_name(base: str, suffix: str) -> str:
    """``<base><suffix>`` within PostgreSQL's 63-byte name limit (the base is shortened, never the suffix),
    so that a derived database name is never silently truncated into another one."""
    room = _MAX_IDENTIFIER - len(suffix.encode("utf-8"))
    raw = base.encode("utf-8")[:room]
    return raw.decode("utf-8", errors="ignore") + suffix


_PASSFILE_PREFIX = "sec-pgpass-"


def _sweep_passfiles() -> None:
    """Remove passfiles that killed processes of this user left behind: a secret must not outlive its use."""
    folder = tempfile.gettempdir()
    for path in glob.glob(os.path.join(folder, _PASSFILE_PREFIX + "*-*")):
        pid_text = os.path.basename(path)[len(_PASSFILE_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            if os.lstat(path).st_uid != os.getuid() or pid_alive(int(pid_text)):
                continue
            os.unlink(path)
        except OSError:
            continue


def _passfile_field(value: str) -> str:
    # The passfile format: fields separated by ':', with ':' and '\' escaped by a backslash.
    return value.replace("\\", "\\\\").replace(":", "\\:")


# -- running commands with the site's credentials -----------------------------------------------------------
class PgClient:
    """The site's database, reachable by the client tools for as long as this context is open.

    ``PgClient.for_site(site_dir)`` reads database.yml. Use it as a context manager: the passfile is created
    on entry and removed on exit. ``commands`` collects the argv of everything run (without secrets).
    """

    def __init__(self, host: str | None, port: int | None, database: str, user: str | None,
                 password: str | None) -> None:
        if not database:
            raise PostgresError("no database name configured")
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self._password = password
        self._passfile: str | None = None
        self.commands: list[list[str]] = []
        self._server_version: int | None = None

    @classmethod
    def for_site(cls, site_dir: str, environment: str = "production") -> PgClient:
        """The client for the database in ``<site_dir>/shared/config/database.yml``."""
        config = read_database_config(site_dir, environment)
        if not config.get("name"):
            path = os.path.join(site_dir, "shared", "config", "database.yml")
            raise PostgresError(f"{path} has no {environment} database name")
        return cls(config.get("host"), config.get("port"), config["name"], config.get("user"),
                   read_database_password(site_dir, environment))

    @property
    def password(self) -> str | None:
        """For no_log masking by the calling module only: never put it in a result."""
        return self._password

    def describe(self) -> dict:
        """The connection without secrets, as modules return it."""
        return {"host": self.host, "port": self.port, "database": self.database, "user": self.user}

    # context: the passfile
    def __enter__(self) -> PgClient:
        if self._password is not None:
            _sweep_passfiles()
            # mkstemp creates it 0600. The pid in the name lets a later run remove it if this process is killed
            # (SIGKILL cannot be caught, and the tools need a file they can open by name).
            handle, path = tempfile.mkstemp(prefix=f"{_PASSFILE_PREFIX}{os.getpid()}-")
            try:
                os.fchmod(handle, 0o600)
                line = f"*:*:*:{_passfile_field(self.user or '*')}:{_passfile_field(self._password)}\n"
                os.write(handle, line.encode("utf-8"))
            finally:
                os.close(handle)
            self._passfile = path
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._passfile:
            try:
                os.unlink(self._passfile)
            except FileNotFoundError:
                pass
            self._passfile = None

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _PG_ENV_DROP}
        if self._password is not None:
            if not self._passfile:
                raise PostgresError("PgClient used outside its `with` block: no passfile for the password")
            env["PGPASSFILE"] = self._passfile
        env["PGCONNECT_TIMEOUT"] = env.get("PGCONNECT_TIMEOUT", "15")
        # Messages in English so that the one-line errors we return read the same everywhere.
        env["LC_MESSAGES"] = "C"
        return env

    def connection_args(self) -> list[str]:
        """-h/-p/-U as configured, and -w: never prompt (there is no terminal under Ansible)."""
        args: list[str] = []
        if self.host:
            args += ["-h", self.host]
        if self.port:
            args += ["-p", str(self.port)]
        if self.user:
            args += ["-U", self.user]
        return args + ["-w"]

    @staticmethod
    def dbname_arg(database: str) -> str:
        """A database name for -d: tools read a value with '=' or a URI prefix as a connection string."""
        if "=" in database or database.startswith(("postgresql://", "postgres://")):
            # Connection-string quoting, not SQL's: single quotes, with \\ and \' escaped by a backslash.
            escaped = database.replace("\\", "\\\\").replace("'", "\\'")
            return f"dbname='{escaped}'"
        return database

    def run(self, argv: Sequence[str], timeout: float | None = None, record: bool = True) -> CommandResult:
        """Run a client tool with the credentials. argv must not contain the password (it never does:
        nothing here puts it there)."""
        argv = [str(a) for a in argv]
        # A password of a few characters would match innocent arguments ("-j4"); longer ones cannot.
        if self._password and len(self._password) >= 6 and any(self._password in a for a in argv):
            raise PostgresError("refusing to run a command whose arguments contain the database password")
        if record:
            self.commands.append(list(argv))
        started = time.monotonic()
        try:
            done = subprocess.run(argv, env=self.environment(), stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{os.path.basename(argv[0])} did not finish within {timeout} s") from None
        except OSError as exc:
            raise PostgresError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        return CommandResult(done.returncode, done.stdout.decode("utf-8", "replace"),
                             done.stderr.decode("utf-8", "replace"), argv, time.monotonic() - started)

    def stream(self, argv: Sequence[str], consume: Callable[[bytes], None], record: bool = True) -> CommandResult:
        """Run a client tool whose standard output is too big to hold (``pg_restore --file -``), handing it
        to ``consume`` in chunks as it comes. The result's stdout is empty; stderr is kept (it is small)."""
        argv = [str(a) for a in argv]
        if self._password and len(self._password) >= 6 and any(self._password in a for a in argv):
            raise PostgresError("refusing to run a command whose arguments contain the database password")
        if record:
            self.commands.append(list(argv))
        started = time.monotonic()
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(argv, env=self.environment(), stdin=subprocess.DEVNULL,
                                           stdout=subprocess.PIPE, stderr=errors)
            except OSError as exc:
                raise PostgresError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
            try:  # a 1 MiB pipe (Linux's F_SETPIPE_SZ): fewer switches between the tool and the reader
                fcntl.fcntl(process.stdout.fileno(), 1031, 1 << 20)
            except OSError:
                pass
            try:
                while True:
                    chunk = process.stdout.read(1 << 20)
                    if not chunk:
                        break
                    consume(chunk)
            finally:
                process.stdout.close()
                returncode = process.wait()
            errors.seek(0)
            stderr = errors.read().decode("utf-8", "replace")
        return CommandResult(returncode, "", stderr, argv, time.monotonic() - started)

    # -- psql ----------------------------------------------------------------------------------------------
    def psql(self, statements: Sequence[str], database: str | None = None, record: bool = True) -> CommandResult:
        """Run SQL statements in one session, each its own ``-c`` (so CREATE/DROP DATABASE, which refuse
        a transaction block, work, and explicit BEGIN/COMMIT span them), stopping at the first error.
        Output is unaligned, tuples only, fields separated by the unit separator (0x1f)."""
        argv = [find_binary("psql"), "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
                *self.connection_args(), "-d", self.dbname_arg(database or self.database)]
        for statement in statements:
            argv += ["-c", statement]
        return self.run(argv, record=record)

    def query(self, sql: str, database: str | None = None, record: bool = False) -> list[list[str]]:
        """Rows of one query, as lists of strings. Raises PostgresError with the server's message."""
        result = self.psql([sql], database=database, record=record)
        if result.rc != 0:
            raise PostgresError(result.errors())
        return [line.split("\x1f") for line in result.stdout.splitlines() if line != ""]

    def applied_migrations(self) -> set[str]:
        """The versions in the Rails schema_migrations table. Raises PostgresError."""
        return {row[0] for row in self.query("SELECT version::text FROM schema_migrations")}

    def execute(self, statements: Sequence[str], database: str | None = None) -> CommandResult:
        result = self.psql(statements, database=database)
        if result.rc != 0:
            raise PostgresError(result.errors())
        return result

    # -- the server ----------------------------------------------------------------------------------------
    def server_version_num(self, database: str | None = None) -> int:
        """``server_version_num`` (150018 for 15.18); also proves the credentials work. Asked once, through
        ``database`` (default: the site's), then remembered."""
        if self._server_version is None:
            rows = self.query("SHOW server_version_num", database=database)
            self._server_version = int(rows[0][0])
        return self._server_version

    def server_major(self) -> int:
        return self.server_version_num() // 10000

    def tool(self, name: str) -> str:
        """A client tool at least as new as the server."""
        return find_binary(name, min_major=self.server_major())

    def database_exists(self, name: str, maintenance_db: str | None = None) -> bool:
        rows = self.query(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}",
                          database=maintenance_db)
        return bool(rows)

    def role_can_replace(self, name: str, maintenance_db: str | None = None) -> str | None:
        """Why this role cannot create a database and rename ``name``, or None when it can."""
        rows = self.query(
            "SELECT r.rolsuper OR r.rolcreatedb, r.rolsuper OR pg_has_role(current_user, d.datdba, 'USAGE')"
            " FROM pg_roles r, pg_database d WHERE r.rolname = current_user"
            f" AND d.datname = {quote_literal(name)}", database=maintenance_db)
        if not rows:
            return f"database {name} does not exist"
        can_create, owns = rows[0][0] == "t", rows[0][1] == "t"
        if not can_create:
            return f"role {self.user} may not create databases (it needs CREATEDB)"
        if not owns:
            return f"role {self.user} does not own database {name} (renaming it needs the owner)"
        return None

    def role_can_create(self, maintenance_db: str | None = None) -> str | None:
        """Why this role cannot create a database, or None when it can."""
        rows = self.query("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user",
                          database=maintenance_db)
        if not rows or rows[0][0] != "t":
            return f"role {self.user} may not create databases (it needs CREATEDB)"
        return None

    def create_database_like(self, name: str, model: str | None, maintenance_db: str | None = None) -> CommandResult:
        """CREATE DATABASE ``name`` with the encoding and locale of ``model``, from template0 so that
        nothing added to template1 gets in the way of the restore. Owned by the connecting role.
        Without a model (the live database is lost), UTF8 with the server's default locale."""
        if model is None:
            return self.execute([f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0 ENCODING 'UTF8'"],
                                database=maintenance_db)
        provider_column = "datlocprovider" if self.server_major() >= 15 else "'c'"  # ICU databases came with 15
        row = self.query(
            f"SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, {provider_column}, t.spcname"
            f" FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace"
            f" WHERE d.datname = {quote_literal(model)}",
            database=maintenance_db)
        if not row:
            raise PostgresError(f"database {model} does not exist")
        encoding, collate, ctype, provider, tablespace = row[0]
        options = (f"TEMPLATE template0 ENCODING {quote_literal(encoding)} LC_COLLATE {quote_literal(collate)}"
                   f" LC_CTYPE {quote_literal(ctype)}")
        if tablespace != "pg_default":
            # On the volume its administrator put the live database on, not the server's default one.
            options += f" TABLESPACE {quote_ident(tablespace)}"
        if provider == "i":
            column = "datlocale" if self.server_major() >= 17 else "daticulocale"
            icu = self.query(f"SELECT {column} FROM pg_database WHERE datname = {quote_literal(model)}",
                             database=maintenance_db)[0][0]
            options += f" LOCALE_PROVIDER icu ICU_LOCALE {quote_literal(icu)}"
        return self.execute([f"CREATE DATABASE {quote_ident(name)} {options}"], database=maintenance_db)

    def database_location(self, name: str, maintenance_db: str | None = None) -> str | None:
        """The directory of a database's own tablespace, None for the server's default one (the data
        directory). A fresh copy made by create_database_like lands there too."""
        rows = self.query("SELECT pg_tablespace_location(t.oid) FROM pg_database d JOIN pg_tablespace t"
                          f" ON t.oid = d.dattablespace WHERE d.datname = {quote_literal(name)}",
                          database=maintenance_db)
        return rows[0][0] if rows and rows[0] and rows[0][0] else None

    def drop_database(self, name: str, maintenance_db: str | None = None) -> CommandResult:
        """DROP DATABASE IF EXISTS, ending its sessions first (WITH (FORCE) from 13 on)."""
        force = " WITH (FORCE)" if self.server_major() >= 13 else ""
        return self.execute([f"DROP DATABASE IF EXISTS {quote_ident(name)}{force}"], database=maintenance_db)

    def terminate_sql(self, name: str | None, wait_ms: int | None = None) -> str:
        """SQL that ends the other client sessions on ``name`` that this role may end: its own, and any but a
        superuser's where it may signal other roles (pg_signal_backend). pg_terminate_backend fails the whole
        statement on one it may not end. Autovacuum workers are left to ALTER/DROP DATABASE, which stop them
        themselves; a session left running makes the rename fail with "being accessed by other users".
        name None is the database connected to; wait_ms (PostgreSQL 14 on) waits for each session to end."""
        wait = f", {int(wait_ms)}" if wait_ms else ""
        where = "current_database()" if name is None else quote_literal(name)
        return (f"SELECT count(pg_terminate_backend(a.pid{wait})) FROM pg_stat_activity a JOIN pg_roles r"
                f" ON r.oid = a.usesysid WHERE a.datname = {where} AND a.pid <> pg_backend_pid()"
                " AND a.backend_type = 'client backend' AND ((SELECT rolsuper FROM pg_roles"
                " WHERE rolname = current_user) OR (NOT r.rolsuper AND (pg_has_role(current_user, r.oid, 'MEMBER')"
                " OR pg_has_role(current_user, 'pg_signal_backend', 'MEMBER'))))")

    def table_names_by_oid(self, database: str | None = None) -> dict[str, str]:
        """{oid: "schema.table"} of every table that can hold rows, each part quoted as pg_dump quotes it
        in a COPY statement (quote_ident follows the same rule). Raises PostgresError."""
        rows = self.query("SELECT c.oid::text, quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
                          " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                          " WHERE c.relkind IN ('r', 'p', 'm', 'f')", database=database)
        return dict(rows)

    def write_counters(self, end_idle_sessions: bool = False, database: str | None = None) -> dict[str, list[int]]:
        """Rows inserted, updated and deleted so far per table ({"public.t": [ins, upd, del]}), as PostgreSQL's
        statistics count them. A session reports its counts only now and then (from 15: at most once a second,
        within 10 s when idle) but always when it exits: with end_idle_sessions, the sessions on the database
        idle for less than 11 s are ended first (waiting up to 5 s each, from 14), so that the counts are
        complete; only for a site that serves nobody (in maintenance)."""
        if end_idle_sessions and self.server_version_num(database) >= 140000:
            # Only those active in the last 11 s: an idle session reports within 10 s of its last commit.
            self.query(self.terminate_sql(None, wait_ms=5000) + " AND a.state = 'idle'"
                       " AND a.state_change > now() - interval '11 seconds'", database=database)
        rows = self.query("SELECT schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del"
                          " FROM pg_stat_user_tables", database=database)
        return {row[0]: [int(row[1]), int(row[2]), int(row[3])] for row in rows if len(row) == 4}

    def terminate_connections(self, name: str, maintenance_db: str | None = None) -> int:
        rows = self.execute([self.terminate_sql(name)], database=maintenance_db).stdout.split()
        return int(rows[-1]) if rows else 0

    def rename_database(self, old: str, new: str, maintenance_db: str | None = None) -> CommandResult:
        return self.execute([f"ALTER DATABASE {quote_ident(old)} RENAME TO {quote_ident(new)}"],
                            database=maintenance_db)

    def swap_databases(self, live: str, fresh: str, old: str, maintenance_db: str | None = None,
                       attempts: int = 5) -> CommandResult:
        """Put ``fresh`` in the place of ``live``, which becomes ``old``: in one transaction, so that the
        live name always names a complete database, either the previous one or the new one.

        New sessions are refused on the live database first (ALLOW_CONNECTIONS false), so that a client that
        reconnects at once cannot hold the rename off; its sessions are then ended. A failed attempt changes
        nothing and connections are allowed again before it is retried or reported.
        """
        last: CommandResult | None = None
        for attempt in range(attempts):
            last = self.psql([
                f"ALTER DATABASE {quote_ident(live)} WITH ALLOW_CONNECTIONS false",
                self.terminate_sql(live),
                "BEGIN",
                f"ALTER DATABASE {quote_ident(live)} RENAME TO {quote_ident(old)}",
                f"ALTER DATABASE {quote_ident(fresh)} RENAME TO {quote_ident(live)}",
                "COMMIT",
            ], database=maintenance_db)
            if last.rc == 0:
                return last
            # Nothing was renamed (the transaction rolled back): let clients in again before deciding.
            self.psql([f"ALTER DATABASE {quote_ident(live)} WITH ALLOW_CONNECTIONS true"],
                      database=maintenance_db)
            if "being accessed by other users" not in last.stderr or attempt == attempts - 1:
                break
            time.sleep(1 + attempt)
        raise PostgresError(f"could not swap {fresh} in for {live}: {last.errors() if last else '?'}")

    def allow_connections(self, name: str, allow: bool, maintenance_db: str | None = None) -> CommandResult:
        value = "true" if allow else "false"
        return self.execute([f"ALTER DATABASE {quote_ident(name)} WITH ALLOW_CONNECTIONS {value}"],
                            database=maintenance_db)

    def table_checksums(self, database: str | None = None) -> dict[str, str]:
        """{schema.table: md5 of its rows in primary-key order} for every user table: two databases with
        the same checksums hold the same data. Reads every row, so use it on test-sized data."""
        tables = self.query(
            "SELECT n.nspname, c.relname, coalesce((SELECT string_agg(quote_ident(a.attname), ','"
            " ORDER BY array_position(i.indkey::int2[], a.attnum))"
            " FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = c.oid AND i.indisprimary), '') FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN"
            " ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2",
            database=database)
        sums: dict[str, str] = {}
        for schema, table, pk in tables:
            qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
            order = pk or "t::text"
            rows = self.query(f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY {order}), '')) || ':' ||"
                              f" count(*) FROM {qualified} t", database=database)
            sums[f"{schema}.{table}"] = rows[0][0]
        return sums

    # -- pg_dump compression -----------------------------------------------------------------------------
    def pg_dump_compression_args(self, pg_dump: str, spec: str) -> tuple[list[str], str]:
        """(pg_dump arguments, the spec in effect) for ``spec``: ``auto`` picks the fastest method this
        pg_dump has (see _AUTO_PREFERENCE); an explicit spec is checked against the client's version."""
        major = binary_version(pg_dump)[0]
        spec = (spec or "auto").strip().lower()
        if spec == "auto":
            for candidate in _AUTO_PREFERENCE:
                method, level = parse_compression(candidate)
                if method == "gzip" or (major >= 16 and self._pg_dump_supports(pg_dump, candidate)):
                    return self._compression_args(major, method, level), candidate
            raise PostgresError("no usable compression")  # gzip is always last: not reached
        method, level = parse_compression(spec)
        if method in ("lz4", "zstd") and major < 16:
            raise PostgresError(f"pg_dump {major} has only gzip compression (lz4 and zstd came with 16): "
                                "use gzip:N")
        return self._compression_args(major, method, level), compression_spec(method, level)

    @staticmethod
    def _compression_args(major: int, method: str, level: int | None) -> list[str]:
        if major < 16:  # before 16, -Z takes only a gzip level
            return ["-Z", "0" if method == "none" else str(level if level is not None else 6)]
        return [f"--compress={compression_spec(method, level)}"]

    def _pg_dump_supports(self, pg_dump: str, spec: str) -> bool:
        """Whether this pg_dump build has ``spec``: a schema-only dump of no table, to /dev/null (the build
        may lack lz4 or zstd even on 16+, and only running it tells)."""
        probe = self.run([pg_dump, *self.connection_args(), "--schema-only", "--format=custom",
                          f"--compress={spec}", "--table=pg_catalog.sec_compression_probe", "-f", os.devnull,
                          "-d", self.dbname_arg(self.database)], timeout=120, record=False)
        return probe.rc == 0


def writes_between(before: dict, after: dict) -> dict[str, dict[str, int]]:
    """The tables written between two write_counters() readings: {table: {inserted, updated, deleted}}.
    A table whose counts went down (statistics reset, table recreated) counts from zero."""
    found: dict[str, dict[str, int]] = {}
    for table, now in after.items():
        then = before.get(table) or [0, 0, 0]
        if any(n < t for n, t in zip(now, then)):  # noqa: B905 (3.8 on hosts)
            then = [0, 0, 0]
        delta = [n - t for n, t in zip(now, then)]  # noqa: B905
        if any(delta):
            found[table] = {"inserted": delta[0], "updated": delta[1], "deleted": delta[2]}
    return found
