"""The baseline task: does nothing but note when it started, to measure raw django-q2 pickup."""

from __future__ import annotations

import time
from pathlib import Path


def record_start(enqueued_at: float, log_path: str) -> None:
    started = time.time()
    with Path(log_path).open("a") as log:
        log.write(f"{started - enqueued_at:.6f} {started:.6f}\n")
