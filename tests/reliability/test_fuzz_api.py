"""schemathesis against a live server (gunicorn + its own database) and the schema it serves.

All checks but `positive_data_acceptance`: the API refuses schema-valid bodies for reasons a schema cannot
state (a path must exist inside PROJECT_ROOTS, a writing run needs a git repository), and that is right.
`make test` runs a bounded number of examples; `make fuzz` (FUZZ_EXAMPLES) many more.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.harness import BIN, Installation

EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "8")


@pytest.mark.slow
def test_it_passes_schemathesis_with_no_server_errors_and_no_schema_violations(tmp_path: Path):
    with Installation() as install:
        install.start_web()
        with install.client() as client:
            project = client.post(
                "/api/projects/", json={"name": "fuzz", "local_path": str(install.project_dir)}
            )
            assert project.status_code == 201
        command = [
            str(BIN / "schemathesis"), "run", f"{install.url}/api/schema/",
            "-H", f"Authorization: Token {install.token}",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", EXAMPLES, "--workers", "1", "--seed", "7",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = [line for line in done.stdout.splitlines() if "generated" in line]
    print("\n".join(summary))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
