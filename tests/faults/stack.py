"""The processes a fault test starts, kills and restarts: PostgreSQL and Redis (started by
scripts/test-services.sh, which exports how to reach them), Celery workers, Celery beat
and gunicorn, all on the test database.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> float:
    """Poll ``predicate`` until it holds; return the seconds it took."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Services:
    """PostgreSQL and Redis as scripts/test-services.sh started them."""

    pg_bin: Path
    pg_data: Path
    pg_user: str
    redis_port: int
    redis_dir: Path
    restarted: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def from_environment(cls) -> "Services":
        return cls(
            pg_bin=Path(os.environ["CHORUS_PG_BIN"]),
            pg_data=Path(os.environ["CHORUS_PG_DATA"]),
            pg_user=os.environ["CHORUS_PG_USER"],
            redis_port=int(os.environ["CHORUS_REDIS_PORT"]),
            redis_dir=Path(os.environ["CHORUS_REDIS_DIR"]),
        )

    # -------------------------------------------------------- PostgreSQL

    def _as_pg_user(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.pg_user, "--", *command]
        return list(command)

    def pg_restart(self) -> float:
        """``pg_ctl restart -m fast``: every connection is terminated, as an operator's
        restart does. Returns the seconds the server was away."""
        started = time.monotonic()
        subprocess.run(
            self._as_pg_user(
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data),
                "-w",
                "-t",
                "60",
                "-m",
                "fast",
                "restart",
            ),
            check=True,
            cwd="/tmp",
            stdout=subprocess.DEVNULL,
        )
        return time.monotonic() - started

    # -------------------------------------------------------- Redis

    def _redis_cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.redis_port), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return result.stdout.strip()

    def redis_pid(self) -> int:
        for line in self._redis_cli("info", "server").splitlines():
            if line.startswith("process_id:"):
                return int(line.split(":", 1)[1])
        raise AssertionError("Redis does not answer INFO")

    def redis_queue_length(self, queue: str = "default") -> int:
        return int(self._redis_cli("llen", queue) or 0)

    def redis_kill(self) -> None:
        """kill -9: no shutdown, no final AOF rewrite."""
        pid = self.redis_pid()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _port_open(self.redis_port), timeout_s=10, what="Redis gone")

    def redis_start(self) -> None:
        """Start Redis again as test-services.sh does: same port, same AOF directory."""
        log = self.redis_dir / "redis-restarted.log"
        process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.redis_dir),
                "--logfile",
                str(log),
                "--daemonize",
                "no",
            ],
            start_new_session=True,
        )
        self.restarted.append(process)
        wait_until(
            lambda: self._redis_cli("ping") == "PONG", timeout_s=20, what="Redis answers PING"
        )

    def redis_pause(self) -> None:
        os.kill(self.redis_pid(), signal.SIGSTOP)

    def redis_resume(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)


@dataclass
class Process:
    """A Chorus process (worker, beat, gunicorn) in its own session, logging to a file."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> "Process":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def kill_all(self) -> None:
        """SIGKILL the process and every child: a machine losing the worker."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.process is not None
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.process is not None
        os.killpg(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill_all()

    def log_tail(self) -> str:
        return _tail(self.log_path)


def worker(env: dict[str, str], log_dir: Path, name: str, *, concurrency: int = 1) -> Process:
    hostname = f"{name}-{os.getpid()}@{socket.gethostname()}"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-Q",
        "default,gpu",
        "--concurrency",
        str(concurrency),
        "-P",
        "prefork",
        "--loglevel",
        "INFO",
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    return Process(name, command, env, log_dir / f"{name}.log").start()


def worker_pool_child(process: Process, *, timeout_s: float = 30) -> int:
    """The prefork pool's child process, once it exists."""
    wait_until(lambda: bool(process.children()), timeout_s=timeout_s, what="a pool child")
    return process.children()[0]


def beat(env: dict[str, str], log_dir: Path) -> Process:
    schedule = log_dir / "celerybeat-schedule"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        str(schedule),
    ]
    return Process("beat", command, env, log_dir / "beat.log").start()


def gunicorn(env: dict[str, str], log_dir: Path, port: int, *, workers: int = 2) -> Process:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--timeout",
        "30",
        "--access-logfile",
        "-",
    ]
    process = Process("web", command, env, log_dir / "web.log").start()

    def answers() -> bool:
        if not process.alive():
            raise AssertionError(f"gunicorn exited:\n{process.log_tail()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/api/v1/", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    wait_until(answers, timeout_s=60, what="gunicorn answers")
    return process
