"""Status bar probes: Worker, Forgejo, Taiga, Ollama — each up / down / not configured, with when it was
checked. Results are cached for CACHE_SECONDS so page renders never wait on a probe; the bar refreshes
itself through a small fragment."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

CACHE_KEY = "agent-runner:status-bar"
CACHE_SECONDS = 15

UP, DOWN, NOT_CONFIGURED = "up", "down", "not configured"


@dataclass
class ServiceStatus:
    name: str
    state: str
    detail: str
    checked_at: str


def _http_probe(name: str, base_url: str, path: str) -> ServiceStatus:
    now = timezone.localtime().isoformat(timespec="seconds")
    if not base_url:
        return ServiceStatus(name, NOT_CONFIGURED, f"set {name.upper()}_URL to enable", now)
    url = f"{base_url.rstrip('/')}{path}"
    try:
        response = httpx.get(url, timeout=settings.STATUS_PROBE_TIMEOUT)
    except httpx.HTTPError as exc:
        return ServiceStatus(name, DOWN, f"{url}: {type(exc).__name__}", now)
    if response.status_code >= 500:
        return ServiceStatus(name, DOWN, f"{url}: HTTP {response.status_code}", now)
    version = ""
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            version = str(body.get("version", "")) if isinstance(body, dict) else ""
        except ValueError:
            version = ""
    return ServiceStatus(name, UP, f"{url} {version}".strip(), now)


def _worker_probe() -> ServiceStatus:
    from runs.services import worker_status

    now = timezone.localtime().isoformat(timespec="seconds")
    try:
        status = worker_status()
    except Exception as exc:  # the bar must render whatever breaks
        return ServiceStatus("Worker", DOWN, f"status unavailable: {type(exc).__name__}", now)
    clusters = len(status["clusters"])
    if status["alive"]:
        detail = f"{clusters} cluster(s); {status['running']} running, {status['queued']} queued"
        return ServiceStatus("Worker", UP, detail, now)
    return ServiceStatus("Worker", DOWN, f"no worker cluster reporting; {status['queued']} queued", now)


def probe_all() -> list[dict[str, Any]]:
    """Run every probe now (in parallel, each bounded by STATUS_PROBE_TIMEOUT) and cache the result."""
    services = [
        ("Forgejo", settings.FORGEJO_URL, "/api/v1/version"),
        ("Taiga", settings.TAIGA_URL, "/api/v1/"),
        ("Ollama", settings.OLLAMA_URL, "/api/version"),
    ]
    with ThreadPoolExecutor(max_workers=len(services)) as pool:  # HTTP only: no database in these threads
        remote = list(pool.map(lambda service: _http_probe(*service), services))
    results = [asdict(status) for status in (_worker_probe(), *remote)]
    cache.set(CACHE_KEY, results, CACHE_SECONDS)
    return results


def cached() -> list[dict[str, Any]] | None:
    """What the last probe found, or None when nothing is cached: pages render this and never probe."""
    return cache.get(CACHE_KEY)


def current() -> list[dict[str, Any]]:
    """For the bar's own fragment: cached when fresh, probed otherwise."""
    return cached() or probe_all()
