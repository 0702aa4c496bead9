"""The agent's tools, confined to its workspace.

Every path is resolved with realpath and must stay inside the workspace (commonpath), never inside `.git`;
files are opened with O_NOFOLLOW so a symlink can't redirect a write; sizes are capped. A refused call
raises ToolRejected, which the agent records as TOOL_REJECTED and shows the model; it is never a crash and
never a write. In a dry run writes go to an overlay kept in memory and turned into a proposed diff.
"""

from __future__ import annotations

import codecs
import contextlib
import difflib
import errno
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

READ_LIMIT_BYTES = 64 * 1024
WRITE_LIMIT_BYTES = 2 * 1024 * 1024
LIST_LIMIT = 500
OUTPUT_LIMIT_BYTES = 64 * 1024
DEFAULT_COMMAND_TIMEOUT = 600
COMMAND_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TERM", "TZ")


def command_allowed(argv: list[str], allowed: list[list[str]]) -> bool:
    """Whether argv starts with one of the allowed command prefixes (each already split into words)."""
    return any(argv[: len(prefix)] == prefix for prefix in allowed)


class ToolRejected(Exception):
    """The call was refused; the message tells the model why."""


class Toolbox:
    def __init__(
        self,
        workspace: str | Path,
        *,
        dry_run: bool = False,
        allowed_commands: list[str] | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        interrupt: Callable[[], None] = lambda: None,
        overlay: dict[str, str | None] | None = None,
    ) -> None:
        self.root = os.path.realpath(workspace)
        self.dry_run = dry_run
        self.allowed = [shlex.split(entry) for entry in (allowed_commands or []) if entry.strip()]
        self.command_timeout = command_timeout
        self.interrupt = interrupt
        self.overlay: dict[str, str | None] = overlay if overlay is not None else {}

    # -- paths -----------------------------------------------------------------------------------
    def resolve(self, raw: Any) -> tuple[str, str]:
        """(absolute real path, path relative to the workspace) or ToolRejected."""
        if not isinstance(raw, str) or not raw.strip():
            raise ToolRejected("a path is required")
        if "\x00" in raw:
            raise ToolRejected("the path contains a NUL byte")
        if raw.startswith("~"):
            raise ToolRejected("'~' is not expanded: use a path relative to the repository root")
        if os.path.isabs(raw):
            raise ToolRejected(f"{raw!r} is absolute: use a path relative to the repository root")
        resolved = os.path.realpath(os.path.join(self.root, raw))
        if os.path.commonpath([self.root, resolved]) != self.root:
            raise ToolRejected(f"{raw!r} leads outside the workspace")
        relative = os.path.relpath(resolved, self.root)
        if relative == "." and raw.strip() not in (".", "./"):
            raise ToolRejected(f"{raw!r} is the workspace itself, not a file")
        if ".git" in Path(relative).parts or ".git" in Path(os.path.normpath(raw)).parts:
            raise ToolRejected(f"{raw!r} is inside .git, which the agent may not touch")
        return resolved, relative

    def _refuse_links(self, relative: str) -> None:
        """Writes never go through a symbolic link, even one that stays inside the workspace."""
        current = self.root
        for part in Path(relative).parts:
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise ToolRejected(f"{part!r} is a symbolic link; links are not followed for writes")

    def resolve_for_write(self, raw: Any) -> tuple[str, str]:
        resolved = self.resolve(raw)
        self._refuse_links(os.path.normpath(raw))
        return resolved

    def _open_nofollow(self, path: str, flags: int) -> int:
        try:
            return os.open(path, flags | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ToolRejected("the path is a symbolic link; links are not followed") from None
            if exc.errno == errno.ENOENT:
                raise ToolRejected("no such file") from None
            if exc.errno == errno.EISDIR:
                raise ToolRejected("that is a directory") from None
            raise ToolRejected(f"cannot open: {exc.strerror}") from None

    # -- reading ---------------------------------------------------------------------------------
    def _read_text(self, path: str, relative: str) -> str:
        if relative in self.overlay:
            content = self.overlay[relative]
            if content is None:
                raise ToolRejected("no such file (deleted in this dry run)")
            return content
        fd = self._open_nofollow(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(WRITE_LIMIT_BYTES + 1)
        if b"\x00" in data[:8192]:
            raise ToolRejected("binary file")
        return data.decode("utf-8", errors="replace")

    def list_files(self, path: str = ".") -> dict[str, Any]:
        base, relative = self.resolve(path or ".")
        if not os.path.isdir(base):
            raise ToolRejected(f"{path!r} is not a directory")
        files: list[str] = []
        for current, dirs, names in os.walk(base):
            dirs[:] = sorted(d for d in dirs if d != ".git" and not os.path.islink(os.path.join(current, d)))
            for name in sorted(names):
                files.append(os.path.relpath(os.path.join(current, name), self.root))
        files = sorted(
            {*files, *(k for k, v in self.overlay.items() if v is not None)}
            - {k for k, v in self.overlay.items() if v is None}
        )
        if relative != ".":
            files = [f for f in files if f == relative or f.startswith(relative.rstrip("/") + "/")]
        note = f" (first {LIST_LIMIT} of {len(files)})" if len(files) > LIST_LIMIT else ""
        return {"files": files[:LIST_LIMIT], "summary": f"{len(files)} files{note}"}

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> dict[str, Any]:
        real, relative = self.resolve(path)
        text = self._read_text(real, relative)
        lines = text.splitlines(keepends=True)
        first = max(1, int(start_line or 1))
        last = min(len(lines), int(end_line or len(lines)))
        chosen = "".join(lines[first - 1 : last])
        note = ""
        if len(chosen.encode()) > READ_LIMIT_BYTES:
            chosen = chosen.encode()[:READ_LIMIT_BYTES].decode(errors="ignore")
            note = f" (cut at {READ_LIMIT_BYTES // 1024} KiB: read a line range for the rest)"
        return {
            "content": chosen,
            "summary": f"{relative} lines {first}-{last} of {len(lines)}{note}",
            "note": note.strip(),
        }

    # -- writing ---------------------------------------------------------------------------------
    def _write(self, real: str, relative: str, content: str) -> None:
        data = content.encode()
        if len(data) > WRITE_LIMIT_BYTES:
            raise ToolRejected(
                f"{len(data)} bytes is over the {WRITE_LIMIT_BYTES // (1024 * 1024)} MiB write limit"
            )
        if self.dry_run:
            self.overlay[relative] = content
            return
        parent = os.path.dirname(real)
        self._make_dirs(parent)
        fd = self._open_nofollow(real, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def _make_dirs(self, directory: str) -> None:
        relative = os.path.relpath(directory, self.root)
        current = self.root
        for part in [] if relative == "." else Path(relative).parts:
            current = os.path.join(current, part)
            if os.path.islink(current):
                raise ToolRejected(f"{part!r} is a symbolic link; links are not followed")
            if not os.path.exists(current):
                os.mkdir(current)

    def write_file(self, path: str, content: Any) -> dict[str, Any]:
        real, relative = self.resolve_for_write(path)
        if not isinstance(content, str):
            raise ToolRejected("content must be text")
        existed = (relative in self.overlay and self.overlay[relative] is not None) or os.path.lexists(real)
        self._write(real, relative, content)
        verb = "updated" if existed else "created"
        return {"summary": f"{verb} {relative} ({len(content.encode())} bytes)", "path": relative}

    def replace_in_file(self, path: str, old: Any, new: Any) -> dict[str, Any]:
        real, relative = self.resolve_for_write(path)
        if not isinstance(old, str) or not old or not isinstance(new, str):
            raise ToolRejected("replace_in_file needs non-empty `old` text and `new` text")
        text = self._read_text(real, relative)
        count = text.count(old)
        if count == 0:
            raise ToolRejected(f"the old text was not found in {relative}; read the file and copy it exactly")
        if count > 1:
            raise ToolRejected(
                f"the old text appears {count} times in {relative}; include more lines to make it unique"
            )
        self._write(real, relative, text.replace(old, new, 1))
        return {"summary": f"replaced {len(old.splitlines()) or 1} line(s) in {relative}", "path": relative}

    def delete_file(self, path: str) -> dict[str, Any]:
        real, relative = self.resolve_for_write(path)
        if self.dry_run:
            if self.overlay.get(relative) is None and not os.path.isfile(real):
                raise ToolRejected("no such file")
            self.overlay[relative] = None
        else:
            if os.path.islink(real) or not os.path.isfile(real):
                raise ToolRejected("no such file (or not a regular file)")
            os.unlink(real)
        return {"summary": f"deleted {relative}", "path": relative}

    def proposed_diff(self) -> str:
        """The dry run's would-be changes as a unified diff against the workspace."""
        chunks = []
        for relative in sorted(self.overlay):
            real = os.path.join(self.root, relative)
            before = Path(real).read_text(errors="replace") if os.path.isfile(real) else ""
            after = self.overlay[relative] or ""
            chunks.extend(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    after.splitlines(keepends=True),
                    fromfile=f"a/{relative}" if before else "/dev/null",
                    tofile=f"b/{relative}" if self.overlay[relative] is not None else "/dev/null",
                )
            )
        return "".join(chunks)

    # -- commands --------------------------------------------------------------------------------
    def command_allowed(self, argv: list[str]) -> bool:
        return command_allowed(argv, self.allowed)

    def run_command(self, command: Any) -> dict[str, Any]:
        argv = shlex.split(command) if isinstance(command, str) else command
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ToolRejected("command must be a list of arguments or a command line")
        if not self.allowed:
            raise ToolRejected("this project allows no commands")
        if not self.command_allowed(argv):
            allowed = ", ".join(" ".join(p) for p in self.allowed)
            raise ToolRejected(f"{shlex.join(argv)!r} is not allowed; allowed commands start with: {allowed}")
        if self.dry_run:
            raise ToolRejected("commands do not run in a dry run")
        return run_confined(argv, cwd=self.root, timeout=self.command_timeout, interrupt=self.interrupt)


def run_confined(
    argv: list[str],
    *,
    cwd: str,
    timeout: float,
    interrupt: Callable[[], None],
    output_limit: int = OUTPUT_LIMIT_BYTES,
    on_output: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run argv (no shell) in its own process group with a clean environment; kill the whole group on
    timeout or when `interrupt()` raises. Output goes to a file, never into memory whole: the result keeps
    `output_limit` bytes (head and tail), and `on_output` receives it as it comes (up to STREAM_LIMIT)."""
    env = {key: os.environ[key] for key in COMMAND_ENV_KEEP if key in os.environ}
    env["HOME"] = cwd
    started = time.monotonic()
    out_path = Path(cwd).parent / f".agent-runner-output-{os.getpid()}-{time.monotonic_ns()}"
    with open(out_path, "w+b") as sink, open(out_path, "rb") as reader:
        stream = _OutputStream(reader, on_output)
        try:
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        except FileNotFoundError:
            out_path.unlink(missing_ok=True)
            raise ToolRejected(f"{argv[0]!r} is not installed") from None
        timed_out = False
        try:
            while process.poll() is None:
                if time.monotonic() - started > timeout:
                    timed_out = True
                    _kill_group(process)
                    break
                interrupt()
                stream.flush()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.1)
        except BaseException:
            _kill_group(process)
            out_path.unlink(missing_ok=True)
            raise
        _kill_group(process)  # whatever it left running in its group goes too
        stream.flush(final=True)
        size = sink.tell()
        sink.seek(0)
        if size > output_limit:
            half = output_limit // 2
            head = sink.read(half)
            sink.seek(size - half)
            output = head + f"\n... [{size - output_limit} bytes cut] ...\n".encode() + sink.read()
        else:
            output = sink.read()
    out_path.unlink(missing_ok=True)
    seconds = round(time.monotonic() - started, 2)
    code = process.returncode
    text = output.decode(errors="replace")
    verdict = f"timed out after {timeout:.0f} s" if timed_out else f"exit {code}"
    return {
        "argv": argv,
        "exit_code": None if timed_out else code,
        "timed_out": timed_out,
        "seconds": seconds,
        "output": text,
        "output_bytes": size,
        "summary": f"{shlex.join(argv)}: {verdict} in {seconds} s, {size} bytes of output",
    }


STREAM_LIMIT = 1024 * 1024
STREAM_INTERVAL_SECONDS = 0.3


class _OutputStream:
    """Hands a running command's output to a callback in chunks, at most every STREAM_INTERVAL_SECONDS."""

    def __init__(self, reader: Any, on_output: Callable[[str], None] | None) -> None:
        self.reader = reader
        self.on_output = on_output
        self.sent = 0
        self.last = 0.0
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def flush(self, *, final: bool = False) -> None:
        if self.on_output is None or self.sent >= STREAM_LIMIT:
            return
        if not final and time.monotonic() - self.last < STREAM_INTERVAL_SECONDS:
            return
        self.last = time.monotonic()
        data = self.reader.read(STREAM_LIMIT - self.sent)
        text = self.decoder.decode(data, final=final)
        self.sent += len(data)
        if self.sent >= STREAM_LIMIT:
            text += "\n[output continues; the log keeps the first 1 MiB]\n"
        if text:
            self.on_output(text)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
