"""A dbt fork server: dbt imported once per Dagster process, each dbt invocation a fork of it.

dagster-dbt runs every dbt command as a new `dbt` process, and each pays Python's start and
dbt's imports again (about 1.5 s here): about a third of the fixed cost of `metrics backfill
--grain all`, which makes one invocation per grain, and some 45 s of the test suite. Here the
process that runs the Dagster steps starts one helper that imports dbt and its adapters and
then waits on a Unix socket. dagster-dbt's `dbt_executable` is `metrics-dbt` (`launch` below):
it hands its arguments, environment, working directory and its stdout/stderr to the helper,
which forks a child that runs dbt's own command line in that state and exits with dbt's exit
code. Each invocation is still a separate process (nothing carries over from one to the next:
connections, DuckDB's lock, dbt's globals), started from memory instead of from disk.

Without a helper (METRICS_DBT_FORKSERVER=0, a platform without fork, or the helper gone), the
launcher runs the real `dbt` in its place. The helper exits when the process that started it
does. Its socket lives in a directory only this user can open (`tempfile.mkdtemp`).
"""

from __future__ import annotations

import array
import atexit
import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SOCKET_ENV = "METRICS_DBT_FORKSERVER_SOCKET"
SWITCH_ENV = "METRICS_DBT_FORKSERVER"
READY_WAIT_SECONDS = 30.0

_started: dict[int, tuple[subprocess.Popen[bytes], str]] = {}
_starting = threading.Lock()


def enabled() -> bool:
    """Whether invocations go through a fork server (on by default where fork exists)."""
    setting = os.environ.get(SWITCH_ENV, "1").strip().lower()
    return hasattr(os, "fork") and setting not in {"0", "false", "no", "off"}


def ensure_started() -> str | None:
    """The socket of this process's fork server, starting it on first use; None when disabled.

    Starting it returns at once: the helper imports dbt in the background (on another core
    while this process goes on) and the first launcher waits for it to listen.
    """
    if not enabled():
        return None
    with _starting:
        pid = os.getpid()
        if pid in _started and _started[pid][0].poll() is None:
            return _started[pid][1]
        return _start(pid)


def _start(owner: int) -> str:
    directory = tempfile.mkdtemp(prefix="metrics-dbt-")
    path = os.path.join(directory, "fork.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.dbt_forkserver", path, str(owner)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=None,  # its own failures, if any, show in this process's stderr
        start_new_session=True,  # a Ctrl-C in the terminal reaches dbt through the launcher
    )
    _started[owner] = (process, path)
    atexit.register(_stop, process, directory, owner)
    return path


def _stop(process: subprocess.Popen[bytes], directory: str, owner: int) -> None:
    if os.getpid() != owner:  # a forked copy of the owner exiting leaves the helper alone
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(directory, ignore_errors=True)


# ---- the helper -------------------------------------------------------------------------------


def _serve(path: str, owner: int) -> None:
    """Import dbt, listen on `path`, fork a child per connection, until `owner` exits."""
    try:
        import dbt.cli.main  # noqa: F401  (the point of the helper: imported once, here)
    except BaseException:
        # Without dbt there is nothing to serve: removing the directory tells launchers waiting
        # for the socket to run `dbt` themselves now, which reports the problem in the run.
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        raise

    for adapter in ("dbt.adapters.duckdb", "dbt.adapters.postgres"):
        with contextlib.suppress(ImportError):
            __import__(adapter)

    def leave(*_: object) -> None:  # its socket's directory goes with it
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
        os._exit(0)

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGTERM, leave)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    scratch = path + ".new"
    server.bind(scratch)
    server.listen(16)
    os.replace(scratch, path)  # launchers see the socket only once it accepts
    while True:
        readable, _, _ = select.select([server], [], [], 1.0)
        if os.getppid() != owner:  # the process that started the helper is gone
            leave()
        if not readable:
            continue
        connection, _ = server.accept()
        if os.fork() == 0:
            server.close()
            _run_child(connection)  # never returns
        connection.close()


def _receive(connection: socket.socket) -> tuple[dict[str, object], list[int]]:
    fds = array.array("i")
    chunks: list[bytes] = []
    while True:
        data, ancillary, _flags, _addr = connection.recvmsg(
            1 << 16, socket.CMSG_SPACE(3 * fds.itemsize)
        )
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            break
        chunks.append(data)
        if data.endswith(b"\n"):
            break
    return json.loads(b"".join(chunks)), list(fds)


def _run_child(connection: socket.socket) -> None:
    """In the forked child: become the launcher's dbt process, run dbt, report its exit code."""
    code = 2
    try:
        request, fds = _receive(connection)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for target, fd in zip((0, 1, 2), fds, strict=False):
            os.dup2(fd, target)
            os.close(fd)
        # Line by line, in UTF-8: how dagster-dbt reads dbt's JSON log lines.
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        environ = request["env"]
        assert isinstance(environ, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in environ.items()})
        os.chdir(str(request["cwd"]))
        argv = [str(arg) for arg in request["argv"]]  # type: ignore[attr-defined]
        sys.argv = argv
        _send(connection, {"pid": os.getpid()})
        code = _dbt_main(argv[1:])
    except BaseException as error:  # report, never fall back into the helper's loop
        print(f"metrics-dbt: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()  # what a normal exit runs: dbt's and multiprocessing's
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        with contextlib.suppress(OSError):
            _send(connection, {"exit": code})
        os._exit(code)


def _dbt_main(args: list[str]) -> int:
    """dbt's command line (`dbt.cli.main:cli`, what the `dbt` script runs); its exit code."""
    from dbt.cli.main import cli

    try:
        cli.main(args=args, prog_name="dbt", standalone_mode=True)
    except SystemExit as done:
        if done.code is None:
            return 0
        return done.code if isinstance(done.code, int) else 1
    except KeyboardInterrupt:
        return 130
    return 0


# ---- the launcher (`metrics-dbt`) -------------------------------------------------------------


def real_dbt() -> str:
    """The `dbt` script next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else shutil.which("dbt") or "dbt"


def _connect(path: str) -> socket.socket | None:
    deadline = time.monotonic() + READY_WAIT_SECONDS
    while True:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            client.connect(path)
            return client
        except OSError:
            client.close()
            if time.monotonic() >= deadline or not os.path.isdir(os.path.dirname(path)):
                return None
            time.sleep(0.02)


def _send(connection: socket.socket, message: dict[str, int]) -> None:
    connection.sendall(json.dumps(message).encode() + b"\n")


def _messages(client: socket.socket) -> Iterator[dict[str, int]]:
    """The helper's messages, one JSON object per line: {'pid': ...}, then {'exit': ...}."""
    buffer = b""
    while True:
        try:
            data = client.recv(4096)
        except InterruptedError:
            continue
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def launch() -> None:
    """`metrics-dbt ARGS...`: run `dbt ARGS...` through this process's fork server, else dbt."""
    path = os.environ.get(SOCKET_ENV, "")
    client = _connect(path) if path and enabled() else None
    if client is None:
        dbt = real_dbt()
        os.execvp(dbt, [dbt, *sys.argv[1:]])
    request = {"argv": ["dbt", *sys.argv[1:]], "env": dict(os.environ), "cwd": os.getcwd()}
    payload = json.dumps(request).encode() + b"\n"
    descriptors = array.array("i", [0, 1, 2])  # stdin, stdout, stderr: dbt writes straight to them
    sent = client.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, descriptors)])
    client.sendall(payload[sent:])
    child: dict[str, int] = {}

    def forward(signum: int, _frame: object) -> None:  # Dagster stops dbt with SIGINT
        if "pid" in child:
            os.kill(child["pid"], signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    for message in _messages(client):
        child.update(message)
    sys.exit(child.get("exit", 1))  # no exit code: the child died (reported on its stderr)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
