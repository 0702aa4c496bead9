"""The agent's tools never reach outside the workspace or into .git, and a refusal never writes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runs.agents.tools import READ_LIMIT_BYTES, WRITE_LIMIT_BYTES, Toolbox, ToolRejected


@pytest.fixture
def sandbox(tmp_path: Path):
    """/tmp/x/ws (the workspace), /tmp/x/ws-evil (a sibling whose name starts alike), /tmp/x/outside."""
    workspace = tmp_path / "ws"
    (workspace / ".git").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "app.py").write_text("print('hi')\n")
    (tmp_path / "ws-evil").mkdir()
    (tmp_path / "ws-evil" / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "passwd").write_text("root:x:0:0")
    return workspace


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


ESCAPES = [
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../x",
    "../ws-evil/secret.txt",
    "src/../../outside/passwd",
    "~/.ssh/id_rsa",
    "~",
    "src/\x00app.py",
    ".git/config",
    "src/../.git/config",
    "",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_it_refuses_paths_outside_the_workspace_or_in_git(sandbox, path):
    tools = Toolbox(sandbox)
    before = snapshot(sandbox.parent)
    for call in (
        lambda: tools.read_file(path),
        lambda: tools.write_file(path, "pwned"),
        lambda: tools.replace_in_file(path, "root", "toor"),
        lambda: tools.delete_file(path),
    ):
        with pytest.raises(ToolRejected):
            call()
    assert snapshot(sandbox.parent) == before


def test_it_refuses_symlinks_that_lead_outside_or_into_git(sandbox):
    (sandbox / "out").symlink_to(sandbox.parent / "outside")
    (sandbox / "passwd").symlink_to(sandbox.parent / "outside" / "passwd")
    (sandbox / "gitcfg").symlink_to(sandbox / ".git" / "config")
    (sandbox / "dangling").symlink_to(sandbox.parent / "nowhere" / "file")
    tools = Toolbox(sandbox)
    before = snapshot(sandbox.parent)
    for path in ("out/passwd", "passwd", "gitcfg", "dangling"):
        with pytest.raises(ToolRejected):
            tools.read_file(path)
        with pytest.raises(ToolRejected):
            tools.write_file(path, "x")
    with pytest.raises(ToolRejected):
        tools.write_file("out/new.txt", "x")
    assert snapshot(sandbox.parent) == before
    assert not (sandbox.parent / "outside" / "new.txt").exists() and not (sandbox.parent / "nowhere").exists()


def test_it_refuses_a_link_inside_the_workspace_for_writes(sandbox):
    (sandbox / "alias.py").symlink_to(sandbox / "src" / "app.py")
    tools = Toolbox(sandbox)
    assert "print" in tools.read_file("alias.py")["content"], "reading through an inner link is fine"
    with pytest.raises(ToolRejected, match="symbolic link"):
        tools.write_file("alias.py", "x")
    (sandbox / "linkdir").symlink_to(sandbox / "src")
    with pytest.raises(ToolRejected):
        tools.write_file("linkdir/new.py", "x")
    assert (sandbox / "src" / "app.py").read_text() == "print('hi')\n"


def test_it_reads_writes_replaces_and_deletes_inside(sandbox):
    tools = Toolbox(sandbox)
    assert tools.write_file("pkg/new.py", "a = 1\nb = 2\n")["summary"].startswith("created pkg/new.py")
    assert tools.read_file("pkg/new.py", 2, 2)["content"] == "b = 2\n"
    tools.replace_in_file("pkg/new.py", "b = 2", "b = 3")
    assert (sandbox / "pkg" / "new.py").read_text() == "a = 1\nb = 3\n"
    with pytest.raises(ToolRejected, match="not found"):
        tools.replace_in_file("pkg/new.py", "c = 4", "c = 5")
    tools.write_file("dup.txt", "x\nx\n")
    with pytest.raises(ToolRejected, match="2 times"):
        tools.replace_in_file("dup.txt", "x", "y")
    tools.delete_file("dup.txt")
    assert not (sandbox / "dup.txt").exists()
    assert "src/app.py" in tools.list_files()["files"] and ".git/config" not in tools.list_files()["files"]


def test_it_caps_sizes(sandbox):
    tools = Toolbox(sandbox)
    with pytest.raises(ToolRejected, match="limit"):
        tools.write_file("big.bin", "x" * (WRITE_LIMIT_BYTES + 1))
    assert not (sandbox / "big.bin").exists()
    (sandbox / "long.txt").write_text("y" * (READ_LIMIT_BYTES * 2))
    read = tools.read_file("long.txt")
    assert len(read["content"]) == READ_LIMIT_BYTES and "cut at 64 KiB" in read["note"]


def test_it_keeps_a_dry_run_in_memory(sandbox):
    tools = Toolbox(sandbox, dry_run=True)
    before = snapshot(sandbox)
    tools.write_file("new.txt", "hello\n")
    tools.replace_in_file("src/app.py", "hi", "hello")
    tools.delete_file("src/app.py")
    assert snapshot(sandbox) == before
    diff = tools.proposed_diff()
    assert "+++ b/new.txt" in diff and "+hello" in diff and "--- a/src/app.py" in diff


def test_it_runs_only_allowed_commands_without_secrets(sandbox, monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-secret")
    tools = Toolbox(sandbox, allowed_commands=["env", "ls"])
    result = tools.run_command("env")
    assert (
        result["exit_code"] == 0
        and "sk-secret" not in result["output"]
        and "LLM_API_KEY" not in result["output"]
    )
    assert "app.py" not in tools.run_command(["ls"])["output"] and "src" in tools.run_command("ls")["output"]
    with pytest.raises(ToolRejected, match="not allowed"):
        tools.run_command("rm -rf src")
    with pytest.raises(ToolRejected, match="allows no commands"):
        Toolbox(sandbox).run_command("ls")
    assert (sandbox / "src" / "app.py").exists()


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie left to an init that does not reap is as good as gone."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state


def test_it_kills_a_command_that_runs_too_long(sandbox):
    tools = Toolbox(sandbox, allowed_commands=["sh"], command_timeout=1)
    started = time.monotonic()
    result = tools.run_command(["sh", "-c", "sleep 600 & echo $! > child.pid; wait"])
    assert result["timed_out"] and time.monotonic() - started < 5
    child = int((sandbox / "child.pid").read_text())
    time.sleep(0.2)
    assert not alive(child), "the whole process group is gone"


def test_it_stops_a_command_when_interrupted(sandbox):
    class Stop(Exception):
        pass

    deadline = time.monotonic() + 0.5

    def interrupt() -> None:
        if time.monotonic() > deadline:
            raise Stop

    tools = Toolbox(sandbox, allowed_commands=["sleep"], interrupt=interrupt)
    started = time.monotonic()
    with pytest.raises(Stop):
        tools.run_command("sleep 600")
    assert time.monotonic() - started < 1.5
