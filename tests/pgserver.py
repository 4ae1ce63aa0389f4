"""A throwaway PostgreSQL server for tests and benchmarks.

``initdb`` into a temporary folder, ``pg_ctl start`` on a free loopback port (and a Unix socket
in the same folder), password authentication, and ``pg_ctl stop`` plus removal of the folder at
the end. PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
that Debian's package creates (``runuser -u postgres``). `make postgres` installs the package.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USER = "vipml"
PASSWORD = "s3cret-pw-for-tests"
DATABASE = "vipml"


class ServerUnavailable(RuntimeError):
    """PostgreSQL's server programs are not installed, or the server did not start."""


def bindir() -> Path:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if versions:
        return Path(versions[-1]).parent
    raise ServerUnavailable("PostgreSQL's server programs (initdb, pg_ctl) are not installed")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runner() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs a program as a user PostgreSQL accepts, and its ids."""
    if os.geteuid() != 0:
        return [], None, None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise ServerUnavailable(
            "running as root and there is no 'postgres' user to run the server as"
        ) from None
    runuser = shutil.which("runuser")
    prefix = [runuser, "-u", "postgres", "--"] if runuser else ["su", "postgres", "-c"]
    return prefix, user.pw_uid, user.pw_gid


def _run(prefix: list[str], args: list[str], **kwargs) -> subprocess.CompletedProcess:
    if prefix and prefix[0] == "su":
        import shlex

        args = [shlex.join(args)]
    return subprocess.run([*prefix, *args], capture_output=True, text=True, **kwargs)


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yield its connection URL (``postgresql://user:password@127.0.0.1:port/db``)."""
    bins = bindir()
    prefix, uid, gid = _runner()
    root = Path(tempfile.mkdtemp(prefix="vipml-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if uid is not None:
        os.chown(root, uid, gid)
        os.chown(pwfile, uid, gid)
    os.chmod(root, 0o700)
    port = _free_port()
    started = False
    try:
        init = _run(
            prefix,
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "-A",
                "scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )
        if init.returncode:
            raise ServerUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=20"
        )
        start = _run(
            prefix,
            [
                str(bins / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        if start.returncode:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise ServerUnavailable(
                f"pg_ctl start failed: {start.stderr.strip()[-300:]} {log[-500:]}"
            )
        started = True
        create = _run(
            prefix,
            [
                str(bins / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                USER,
                DATABASE,
            ],
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        if create.returncode:
            raise ServerUnavailable(f"createdb failed: {create.stderr.strip()[-300:]}")
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            _run(prefix, [str(bins / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)
