"""Console and API under load: BENCH_LOAD_OPERATORS (default 200) operators, each with its own logged-in
session, opening a run page and then polling its event fragment as the page's #poller does (the URL the
last response gave it: GET /runs/<id>/events/?after=<cursor>&phase=<header state>, with htmx's headers)
every 1.5 s after each response, spread over BENCH_LOAD_RUNS
(default 20) simple-agent runs that execute throughout (started through the API, one worker slot each), for
BENCH_LOAD_SECONDS (default 60) after a warm-up in which the operators open their run pages. gunicorn and the
qcluster are started as `make run` starts them (gthread, WEB_CONCURRENCY x WEB_THREADS processes and
threads, access log on, with the request time added to its format). The operators are a separate process on 127.0.0.1 (`load.py
operators`: asyncio, one keep-alive HTTP/1.1 connection per operator), steered over its stdin and stdout. An error is a transport error or a non-2xx
response (286, htmx's "stop polling", is a success that ends that operator's polling).
Target: 0 errors, p99 <= 100 ms, no "database is locked" (nor a traceback or a 5xx) in the logs."""

from __future__ import annotations

import asyncio
import html
import json
import math
import os
import random
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.harness import PYTHON, Installation, django_setup, percentile, report, summary

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
# Operators open their run pages during the warm-up (not all in the same instant), then the measurement starts.
WARMUP_SECONDS = min(10.0, SECONDS / 2)
OPERATORS = int(os.environ.get("BENCH_LOAD_OPERATORS", "200"))
RUNS = int(os.environ.get("BENCH_LOAD_RUNS", "20"))
POLL_SECONDS = 1.5  # hx-trigger="every 1500ms" on the run page's #poller
STEP_SECONDS = 0.5
STOP_POLLING = 286  # htmx: stop polling (runs/views.py returns it once a finished run has nothing new)
TARGET_P99_MS = 100
TIMEOUT_SECONDS = 10.0
CURSOR = re.compile(r'id="poller"[^>]*\sdata-cursor="(\d+)"')
POLL_URL = re.compile(r'id="poller"[^>]*\shx-get="([^"]+)"')  # what the page's htmx poller asks for next
ACCESS_STATUS = re.compile(r'HTTP/[\d.]+" (\d{3}) ')
# gunicorn's default access-log format plus the time it spent on the request (us), to tell server time from
# queueing and client delay.
ACCESS_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
POLL_TIME = re.compile(r'"GET /runs/\d+/events/\?after=\S* HTTP.* (\d+)$', re.MULTILINE)


# --- The load generator (its own process) --------------------------------------------------------------


class TransportError(Exception):
    """The connection failed: refused, reset, closed without a whole response, or too slow (10 s)."""


@dataclass
class Response:
    status_code: int
    text: str


class Connection:
    """One keep-alive HTTP/1.1 connection, as a browser tab keeps one, on asyncio streams: a GET written, its
    response read (Content-Length or chunked body), cookies kept as a browser keeps this host's. httpx cost
    the generator ~2.3 ms of CPU per request (0.3 of the 2 cores), and a burst of responses then queued in its
    one event loop, adding its own delay to the latencies measured; this costs a small fraction of that."""

    def __init__(self, url: str) -> None:
        address = urlsplit(url)
        self.host, self.port = address.hostname or "127.0.0.1", address.port or 80
        self.cookies: dict[str, str] = {}
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def is_open(self) -> bool:
        return self.streams is not None

    async def get(self, path: str, headers: dict[str, str]) -> Response:
        try:
            return await asyncio.wait_for(self._get(path, headers), TIMEOUT_SECONDS)
        except (OSError, EOFError, ValueError, TimeoutError) as error:  # IncompleteReadError is an EOFError
            self.close()
            raise TransportError(type(error).__name__) from error

    async def _get(self, path: str, headers: dict[str, str]) -> Response:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "User-Agent: agent-runner-bench"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        fields = [line.partition(":") for line in head[1:] if line]
        response_headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        for name, _, value in fields:
            if name.strip().lower() == "set-cookie":
                cookie, _, _ = value.strip().partition(";")
                key, _, cookie_value = cookie.partition("=")
                self.cookies[key.strip()] = cookie_value.strip()
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
        elif "content-length" in response_headers:
            body = await reader.readexactly(int(response_headers["content-length"]))
        else:
            body = await reader.read()  # the body ends with the connection
            response_headers["connection"] = "close"
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, body.decode())

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


class Operator:
    """One browser tab on a run page: its own session cookie and its own cursor (after=<last seq seen>)."""

    def __init__(self, url: str) -> None:
        self.connection = Connection(url)
        self.url = url
        self.resent = 0

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        """GET; sent again once when it failed on a reused keep-alive connection that the server had just
        closed (reset, or closed without a response), as browsers do (RFC 9112, 9.3.1). Counted, not hidden;
        a failure on a fresh connection is an error."""
        reused = self.connection.is_open
        try:
            return await self.connection.get(path, headers or {})
        except TransportError:
            if not reused:
                raise
            self.resent += 1
            return await self.connection.get(path, headers or {})

    def use_session(self, session_key: str) -> None:
        self.connection.cookies["sessionid"] = session_key

    async def poll(self, run_id: int, measure_from: float, stop_at: float, stats: dict[str, Any]) -> None:
        """Open the run page at some moment of the warm-up, then poll as its #poller does until stop_at;
        latencies count from measure_from, errors from the start."""
        await asyncio.sleep(random.uniform(0, max(0.0, measure_from - time.monotonic() - POLL_SECONDS)))
        try:
            page = await self.get(f"/runs/{run_id}/")
            cursor = int(CURSOR.search(page.text).group(1)) if page.status_code == 200 else None
            poll_url = html.unescape(POLL_URL.search(page.text).group(1)) if cursor is not None else ""
        except (TransportError, AttributeError) as error:
            page, cursor = error, None
        if cursor is None:
            stats["errors"][f"run page: {getattr(page, 'status_code', type(page).__name__)}"] += 1
            return
        # htmx's headers for the poller's request, plus the X-CSRFToken hx-headers puts on every request.
        headers = {"HX-Request": "true", "HX-Trigger": "poller", "HX-Target": "event-log",
                   "HX-Current-URL": f"{self.url}/runs/{run_id}/",
                   "X-CSRFToken": self.connection.cookies.get("csrftoken", "")}  # fmt: skip
        await asyncio.sleep(POLL_SECONDS)
        while time.monotonic() < stop_at:
            measured = time.monotonic() >= measure_from
            stats["requests"] += measured
            sent = time.perf_counter()
            try:
                response = await self.get(poll_url, headers=headers)
            except TransportError as error:
                stats["errors"][f"transport: {error}"] += 1
            else:
                if measured:
                    stats["latencies"].append(time.perf_counter() - sent)
                found = CURSOR.search(response.text)
                if not 200 <= response.status_code < 300:
                    stats["errors"][f"HTTP {response.status_code}"] += 1
                elif found is None or int(found.group(1)) < cursor:
                    stats["errors"]["fragment without a valid cursor"] += 1
                else:
                    stats["events_seen"] += response.text.count('<li class="event ') * measured
                    cursor = int(found.group(1))
                    following = POLL_URL.search(response.text)
                    if response.status_code == STOP_POLLING or following is None:  # the run finished
                        stats["stopped"] += 1
                        return
                    poll_url = html.unescape(following.group(1))
            # Each response swaps in a new #poller, whose 1.5 s timer starts then: wait after the response.
            await asyncio.sleep(POLL_SECONDS)

    async def close(self) -> None:
        self.connection.close()


async def loop_lag(measure_from: float, stop_at: float, lags: list[float]) -> None:
    """How late this process's event loop wakes up: client-side delay that the latencies include."""
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    while time.monotonic() < stop_at:
        before = time.perf_counter()
        await asyncio.sleep(0.05)
        lags.append(time.perf_counter() - before - 0.05)


async def generate(config: dict[str, Any]) -> None:
    operators = [Operator(config["url"]) for _ in config["sessions"]]
    for operator, session_key in zip(operators, config["sessions"], strict=True):
        operator.use_session(session_key)
    try:
        print("ready", flush=True)
        plan = json.loads(await asyncio.to_thread(sys.stdin.readline))
        stats: dict[str, Any] = {
            "latencies": [],
            "errors": Counter(),
            "requests": 0,
            "events_seen": 0,
            "stopped": 0,
            "lags": [],
        }
        measure_from = time.monotonic() + plan["warmup"]
        stop_at = measure_from + plan["seconds"]
        runs = plan["runs"]

        async def announce() -> None:  # tell the benchmark when the measured window begins
            await asyncio.sleep(plan["warmup"])
            print("measuring", flush=True)

        await asyncio.gather(
            announce(),
            loop_lag(measure_from, stop_at, stats["lags"]),
            *(operator.poll(runs[n % len(runs)], measure_from, stop_at, stats)
              for n, operator in enumerate(operators)),
        )  # fmt: skip
        stats["seconds"] = time.monotonic() - measure_from
        stats["resent"] = sum(operator.resent for operator in operators)
        print(json.dumps(stats), flush=True)
    finally:
        await asyncio.gather(*(operator.close() for operator in operators))


# --- The benchmark -----------------------------------------------------------------------------------------


def sessions(install: Installation, count: int) -> list[str]:
    """One logged-in session per operator, made as a login makes it (Django's session store, the user's
    auth hash) but without hashing the password 200 times: logging in is not what is measured."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.get(username=install.username)
    keys = []
    for _ in range(count):
        client = Client()
        client.force_login(user)
        keys.append(client.cookies["sessionid"].value)
    return keys


def start_runs(install: Installation) -> list[int]:
    """RUNS simple-agent runs through the API, each long enough to outlast the measurement; wait for all
    to be RUNNING."""
    steps = math.ceil((WARMUP_SECONDS + SECONDS) / STEP_SECONDS) * 2 + 20
    with install.client() as client:
        project = client.post("/api/projects/", json={"name": "load", "local_path": str(install.project_dir)})
        project.raise_for_status()
        body = {"project_id": project.json()["id"], "goal": "load",
                "options": {"agent": "simple", "max_steps": steps, "step_seconds": STEP_SECONDS}}  # fmt: skip
        ids = []
        for _ in range(RUNS):
            created = client.post("/api/runs/", json=body)
            created.raise_for_status()
            ids.append(created.json()["id"])
    deadline = time.monotonic() + 120
    while running(ids) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {running(ids)} of {len(ids)} runs started")
        time.sleep(0.2)
    return ids


def running(ids: list[int]) -> int:
    from runs.models import Run, RunStatus

    return Run.objects.filter(pk__in=ids, status=RunStatus.RUNNING).count()


def event_total(ids: list[int]) -> int:
    from django.db.models import Sum

    from runs.models import Run

    return Run.objects.filter(pk__in=ids).aggregate(total=Sum("event_seq"))["total"] or 0


def scan_logs(web_log: Path, worker_log: Path, measured_from: int) -> dict[str, Any]:
    """What the server and the workers logged over the whole benchmark; poll times from the measured window
    (web_log from byte measured_from on)."""
    web = web_log.read_bytes() if web_log.exists() else b""
    text = web.decode(errors="replace") + (
        worker_log.read_text(errors="replace") if worker_log.exists() else ""
    )
    measured = web[measured_from:].decode(errors="replace")
    return {
        "database_locked": text.lower().count("database is locked"),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "http_5xx": sum(status.startswith("5") for status in ACCESS_STATUS.findall(text)),
        "web_worker_deaths": text.count("WORKER TIMEOUT") + text.count("Worker (pid:"),
        "server_times": [int(us) / 1e6 for us in POLL_TIME.findall(measured)],
    }


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) of each process tree, and of the whole machine under "machine" (Linux)."""
    if not Path("/proc/stat").exists():
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process has gone
        pid = int(stat.parent.name)
        parents[pid], used[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks
    totals = {}
    for name, root in roots.items():
        tree, grew = {root}, True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree, grew = tree | children, bool(children)
        totals[name] = sum(used.get(pid, 0.0) for pid in tree)
    machine = [int(n) for n in Path("/proc/stat").read_text().split()[1:9]]
    totals["machine"] = (sum(machine) - machine[3] - machine[4]) / ticks  # all but idle and iowait
    return totals


def measure(install: Installation) -> dict[str, Any]:
    web_log, worker_log = install.root / "web.log", install.root / "worker.log"
    install.start_web(log=web_log)
    web = install.processes[-1]
    install.start_workers(log=worker_log)
    generator = subprocess.Popen(
        [PYTHON, __file__, "operators"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    trees = {"gunicorn": web.pid, "qcluster": install.workers.pid, "load generator": generator.pid}
    try:
        logins_started = time.monotonic()
        config = {"url": install.url, "sessions": sessions(install, OPERATORS)}
        generator.stdin.write(json.dumps(config) + "\n")
        generator.stdin.flush()
        if generator.stdout.readline().strip() != "ready":
            raise RuntimeError("the load generator did not start")
        logins = time.monotonic() - logins_started
        ids = start_runs(install)
        generator.stdin.write(json.dumps({"runs": ids, "warmup": WARMUP_SECONDS, "seconds": SECONDS}) + "\n")
        generator.stdin.flush()
        if generator.stdout.readline().strip() != "measuring":
            raise RuntimeError(f"the load generator exited with {generator.wait(timeout=30)}")
        events_before = event_total(ids)
        cpu_before = cpu_seconds(trees)
        log_offset = web_log.stat().st_size
        line = generator.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator exited with {generator.wait(timeout=30)}")
        stats = json.loads(line)
        cpu = {
            name: round((spent - cpu_before[name]) / stats["seconds"], 2)
            for name, spent in cpu_seconds(trees).items()
        }
        events_written = event_total(ids) - events_before
        still_running = running(ids)
        generator.wait(timeout=30)
    except Exception:
        for log in (web_log, worker_log):  # the installation is about to be deleted: show why it failed
            tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            print(f"--- last lines of {log.name}:", *tail, sep="\n", file=sys.stderr)
        raise
    finally:
        if generator.poll() is None:
            generator.kill()
            generator.wait()
    from django.conf import settings

    web = f"{settings.WEB_CONCURRENCY}x{settings.WEB_THREADS}"
    return {**stats, "web": web, "logins_s": logins, "events_written": events_written, "still_running": still_running,
            "cpu_cores": cpu, **scan_logs(web_log, worker_log, log_offset)}  # fmt: skip


def main() -> dict[str, Any]:
    # One worker slot per run: WORKER_CONCURRENCY is "runs executing at once". LOG_LEVEL as `make run` has it.
    with Installation(
        WORKER_CONCURRENCY=str(RUNS),
        LOG_LEVEL="INFO",
        GUNICORN_CMD_ARGS=f"--access-logformat '{ACCESS_FORMAT}'",
    ) as install:
        django_setup(install)
        raw = measure(install)
        engine = install.engine
    latency = summary(raw["latencies"])
    server_time = summary(raw["server_times"])
    errors = sum(raw["errors"].values())
    per_s = round(raw["requests"] / raw["seconds"], 1)
    lag_p99 = round(percentile(raw["lags"], 0.99) * 1000, 1)
    server = {key: raw[key] for key in ("database_locked", "tracebacks", "http_5xx", "web_worker_deaths")}
    missed = [name for name, failed in [
        ("errors", errors > 0), (f"p99 > {TARGET_P99_MS} ms", latency["p99_ms"] > TARGET_P99_MS),
        ("server logs", any(server.values())), ("runs stopped executing", raw["still_running"] < RUNS),
    ] if failed]  # fmt: skip
    met = not missed
    print(f"load ({OPERATORS} operators polling a run page's events every {POLL_SECONDS} s, {RUNS} simple-agent "
          f"runs executing, {SECONDS:g} s, gunicorn gthread {raw['web']}, nproc {os.cpu_count()}, "
          f"{engine})")  # fmt: skip
    print(
        f"  {OPERATORS} sessions, one per operator, ready in {raw['logins_s']:.1f} s, before the measurement"
    )
    print(f"  requests {raw['requests']} ({per_s}/s)  errors {errors} {dict(raw['errors']) or ''}"
          f"  resent on a closed keep-alive connection {raw['resent']}")  # fmt: skip
    print(f"  latency p50 {latency['p50_ms']} ms  p95 {latency['p95_ms']} ms  p99 {latency['p99_ms']} ms"
          f"  (load generator's event-loop lag p99 {lag_p99} ms)")  # fmt: skip
    print(f"  in gunicorn (access log) p50 {server_time['p50_ms']} ms  p95 {server_time['p95_ms']} ms  "
          f"p99 {server_time['p99_ms']} ms; the rest is queueing for a thread or a CPU")  # fmt: skip
    print(f"  runs executing at the end {raw['still_running']}/{RUNS} (polls told to stop: {raw['stopped']}); "
          f"events written {raw['events_written']} ({raw['events_written'] / raw['seconds']:.0f}/s), "
          f"rows received by operators {raw['events_seen']}")  # fmt: skip
    print(f"  server and worker logs: 'database is locked' {server['database_locked']}, tracebacks "
          f"{server['tracebacks']}, 5xx {server['http_5xx']}, gunicorn workers lost {server['web_worker_deaths']}")  # fmt: skip
    cpu = raw["cpu_cores"]
    if cpu:
        per_request = cpu["gunicorn"] / max(per_s, 0.001) * 1000
        print(f"  CPU in cores: gunicorn {cpu['gunicorn']} ({per_request:.1f} ms per request), qcluster "
              f"{cpu['qcluster']}, load generator {cpu['load generator']}; the whole machine {cpu['machine']} of "
              f"{os.cpu_count()}")  # fmt: skip
    print(f"  target 0 errors, p99 <= {TARGET_P99_MS} ms, no 'database is locked' -> "
          f"{'met' if met else 'NOT met: ' + ', '.join(missed)}")  # fmt: skip
    return {
        "name": "load",
        "operators": OPERATORS,
        "runs": RUNS,
        "window_s": SECONDS,
        "engine": engine,
        "web": raw["web"],
        "requests": raw["requests"],
        "requests_per_s": per_s,
        "errors": errors,
        "error_kinds": dict(raw["errors"]),
        "latency": latency,
        "server_time": server_time,
        "server": server,
        "cpu_cores": raw["cpu_cores"],
        "runs_executing_at_end": raw["still_running"],
        "events_written": raw["events_written"],
        "events_seen": raw["events_seen"],
        "resent": raw["resent"],
        "client_loop_lag_p99_ms": lag_p99,
        "target": {"errors": 0, "p99_ms": TARGET_P99_MS, "database_locked": 0},
        "missed": missed,
        "met": met,
    }


if __name__ == "__main__":
    if sys.argv[1:] == ["operators"]:
        asyncio.run(generate(json.loads(sys.stdin.readline())))
    else:
        report(main())
