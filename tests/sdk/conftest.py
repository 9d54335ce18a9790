"""Session fixtures: start the real mock provider and the real gateway binary once per run.

Binaries come from `$SWITCHYARD_BIN` / `$SWITCHYARD_MOCK_BIN`, by default the debug builds in
`<repo>/target/debug/`. A missing binary is a hard failure (build first:
`cargo build -p switchyard -p switchyard-mock-provider`), never a skip.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
ADMIN_KEY = "sk-test-admin-key"
MODEL = "test/echo"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

# Everything we talk to lives on 127.0.0.1: never send it through a proxy from the CI env.
for _var in ("NO_PROXY", "no_proxy"):
    _cur = os.environ.get(_var, "")
    os.environ[_var] = ",".join(p for p in (_cur, "127.0.0.1", "localhost") if p)

GATEWAY_CONFIG = """\
[storage]
url = "sqlite://{db_path}"

[providers.mock]
kind = "openai"
base_url = "{mock_base}/v1"
api_key = "sk-upstream"

[[models]]
id = "test/echo"
name = "Test: Echo"
context_length = 8192
[[models.endpoints]]
provider = "mock"
model = "mock-echo"
pricing = {{ prompt = "0.000001", completion = "0.000002" }}

# One provider of every native kind, all served by the same mock binary.
[providers.anthropic]
kind = "anthropic"
base_url = "{mock_base}"
api_key = "an-key"

[providers.gemini]
kind = "gemini"
base_url = "{mock_base}/v1beta"
api_key = "g-key"

[providers.vertex]
kind = "vertex"
base_url = "{mock_base}/v1/projects/p1/locations/us-central1/publishers/google"
api_key = "ya29.token"

[providers.bedrock]
kind = "bedrock"
base_url = "{mock_base}"
region = "us-east-1"
access_key_id = "AKIDEXAMPLE"
secret_access_key = "secret"

[providers.cohere]
kind = "cohere"
base_url = "{mock_base}"
api_key = "co-key"

[providers.azure]
kind = "azure"
base_url = "{mock_base}"
api_key = "az-key"
""" + "".join(
    f"""
[[models]]
id = "test/{kind}"
name = "Test: {kind}"
context_length = 8192
max_completion_tokens = 1024
[[models.endpoints]]
provider = "{kind}"
model = "{model}"
pricing = {{{{ prompt = "0.000001", completion = "0.000002" }}}}
"""
    for kind, model in [
        ("anthropic", "claude-3-5-haiku-20241022"),
        ("gemini", "gemini-2.5-flash"),
        ("vertex", "gemini-2.5-pro"),
        ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0"),
        ("cohere", "command-a-03-2025"),
        ("azure", "gpt-4o-deployment"),
    ]
)

PROVIDER_KINDS = ["anthropic", "gemini", "vertex", "bedrock", "cohere", "azure"]

# Environment variables that would make the gateway pick up real providers or another config.
_SCRUBBED_ENV = re.compile(
    r"^(SWITCHYARD_CONFIG|RUST_LOG|[A-Z0-9]+_API_KEY|[A-Z0-9]+_BASE_URL|AWS_[A-Z_]+)$"
)


class LogPump:
    """Drains one pipe of a child process in a thread (so the pipe never fills and blocks the
    child), keeps the last lines, and can wait for the first line matching a pattern."""

    def __init__(self, name: str, stream: IO[str], pattern: Optional[re.Pattern[str]] = None):
        self.name = name
        self.lines: collections.deque[str] = collections.deque(maxlen=2000)
        self._pattern = pattern
        self._match: Optional[re.Match[str]] = None
        self._ready = threading.Event()
        self._eof = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name=f"pump-{name}", daemon=True
        )
        self._thread.start()

    def _run(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                line = line.rstrip("\r\n")
                self.lines.append(line)
                if self._pattern is not None and self._match is None:
                    m = self._pattern.search(line)
                    if m:
                        self._match = m
                        self._ready.set()
        except (OSError, ValueError):
            pass
        finally:
            self._eof.set()
            self._ready.set()

    def wait_match(self, proc: subprocess.Popen, timeout: float) -> Optional[re.Match[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready.wait(0.1):
                return self._match
            if proc.poll() is not None:
                # Give the pump a moment to read what the process printed before dying.
                self._eof.wait(2.0)
                return self._match
        return self._match

    def tail(self, n: int = 60) -> str:
        return "\n".join(list(self.lines)[-n:])

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    url: str
    pumps: list[LogPump] = field(default_factory=list)

    def log_tail(self, n: int = 60) -> str:
        parts = []
        for p in self.pumps:
            if p.lines:
                parts.append(f"--- {self.name} {p.name} (last {n} lines) ---\n{p.tail(n)}")
        return "\n".join(parts) or f"--- {self.name}: no output ---"

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except ProcessLookupError:
                pass
        for p in self.pumps:
            p.join()
        return self.proc.returncode


_SERVICES: dict[str, Service] = {}


def _binary(env_var: str, default: Path, build_hint: str) -> Path:
    raw = os.environ.get(env_var)
    path = Path(raw) if raw else default
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(
            f"{env_var}: binary not found or not executable: {path}\n"
            f"Build it first ({build_hint}) or point {env_var} at it.",
            pytrace=False,
        )
    return path


def _fail_start(what: str, proc: subprocess.Popen, pumps: list[LogPump], why: str) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for p in pumps:
        p.join(2.0)
    out = "\n".join(f"--- {p.name} ---\n{p.tail(100)}" for p in pumps)
    pytest.fail(
        f"{what} did not become ready: {why} (exit code {proc.returncode})\n{out}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def gateway_bin() -> Path:
    return _binary(
        "SWITCHYARD_BIN",
        REPO / "target" / "debug" / "switchyard",
        "cargo build -p switchyard",
    )


@pytest.fixture(scope="session")
def mock_bin() -> Path:
    return _binary(
        "SWITCHYARD_MOCK_BIN",
        REPO / "target" / "debug" / "switchyard-mock",
        "cargo build -p switchyard-mock-provider",
    )


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="switchyard-sdk-tests-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mock_provider(mock_bin: Path, workdir: Path):
    """The mock provider; `.url` is `http://IP:PORT` (its OpenAI base URL is `.url + "/v1"`)."""
    proc = subprocess.Popen(
        [str(mock_bin), "--listen", "127.0.0.1:0"],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
    ready = re.compile(r"^switchyard-mock listening on (http://[^\s/]+)/?\s*$")
    assert proc.stdout is not None and proc.stderr is not None
    out = LogPump("stdout", proc.stdout, ready)
    err = LogPump("stderr", proc.stderr)
    m = out.wait_match(proc, READY_TIMEOUT_S)
    if m is None:
        _fail_start("switchyard-mock", proc, [out, err], "no readiness line on stdout")
    svc = Service("switchyard-mock", proc, m.group(1), [out, err])
    _SERVICES["mock"] = svc
    yield svc
    _SERVICES.pop("mock", None)
    svc.stop()


@pytest.fixture(scope="session")
def gateway(gateway_bin: Path, mock_provider: Service, workdir: Path):
    """The gateway; `.url` is `http://IP:PORT` (OpenRouter API at `.url + "/api/v1"`)."""
    config = workdir / "switchyard.toml"
    config.write_text(
        GATEWAY_CONFIG.format(db_path=workdir / "switchyard.db", mock_base=mock_provider.url),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not _SCRUBBED_ENV.match(k)}
    env["SWITCHYARD_ADMIN_KEY"] = ADMIN_KEY
    env["SWITCHYARD_LOG"] = "info"  # the readiness line is an info-level log line
    env["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        [str(gateway_bin), "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        bufsize=1,
    )
    ready = re.compile(r"listening on (http://[^\s/]+)")
    assert proc.stdout is not None and proc.stderr is not None
    err = LogPump("stderr", proc.stderr, ready)
    out = LogPump("stdout", proc.stdout)
    m = err.wait_match(proc, READY_TIMEOUT_S)
    if m is None:
        _fail_start(
            "switchyard serve",
            proc,
            [err, out],
            f"no 'listening on http://IP:PORT' line on stderr\nconfig:\n{config.read_text()}",
        )
    svc = Service("switchyard", proc, m.group(1), [err, out])
    _SERVICES["gateway"] = svc
    yield svc
    _SERVICES.pop("gateway", None)
    svc.stop()


@pytest.fixture(scope="session")
def gateway_url(gateway: Service) -> str:
    return gateway.url


@pytest.fixture(scope="session")
def api_base(gateway: Service) -> str:
    """OpenRouter-style base URL: `<gateway>/api/v1`."""
    return gateway.url + "/api/v1"


@pytest.fixture(scope="session")
def admin_key() -> str:
    return ADMIN_KEY


@pytest.fixture(scope="session")
def model_id() -> str:
    return MODEL


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test, attach the tail of the gateway's and mock's logs to the report."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for svc in list(_SERVICES.values()):
            alive = "running" if svc.proc.poll() is None else f"exited {svc.proc.returncode}"
            report.sections.append((f"{svc.name} log ({alive})", svc.log_tail(40)))
    return report
