"""The README's commands, run against the running suite, so the README cannot drift.

Every ```sh block runs, command by command, in one shell environment (``export`` carries on),
in a directory holding the README's ```yaml blocks that start with ``# <file>`` (the policy
files). A command whose comment says ``refused`` must fail; every other one must succeed. A
block right after ``<!-- readme-test: skip ... -->`` is not run (``make run`` starts a suite of
its own); such blocks are counted and reported.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import BERTH, Cli

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\b")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    language: str
    lines: list[str]
    line: int
    skipped: bool


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening and opening.group(1):
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append(
                Block(opening.group(1), lines[i + 1 : end], i + 1, bool(SKIP.search(previous)))
            )
            i = end
        i += 1
    return found


def commands(block: Block) -> list[tuple[str, bool]]:
    """Each command of a block (continuation lines joined), and whether it must fail."""
    out: list[tuple[str, bool]] = []
    pending = ""
    for raw in block.lines:
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command, comment = split_comment(pending + line)
        pending = ""
        out.append((command.strip(), "refused" in comment))
    return out


def split_comment(line: str) -> tuple[str, str]:
    """``cmd "a # b"  # why`` -> (``cmd "a # b"``, ``why``): a # outside quotes starts it."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :]
    return line, ""


def test_readme_blocks_parse() -> None:
    found = blocks(README.read_text("utf-8"))
    shell = [b for b in found if b.language == "sh"]
    assert shell, "the README has no sh blocks"
    assert all(commands(b) for b in shell if not b.skipped)
    assert (
        commands(Block("sh", ['berth x -p "a # b"   # refused: because'], 1, False))[0][1] is True
    )


# Some fifty commands, several waiting for workloads to run: far more than one test usually takes.
@pytest.mark.timeout(1800)
def test_every_readme_command_runs(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = README.read_text("utf-8")
    found = blocks(text)
    for block in found:
        first = block.lines[0] if block.lines else ""
        if block.language == "yaml" and first.startswith("# ") and first.endswith(".yaml"):
            (tmp_path / first[2:].strip()).write_text("\n".join(block.lines) + "\n", "utf-8")
    env = dict(cli.env)
    # A home of its own: the README logs in and out as others, and the tests that follow act as
    # the administrator in the shared one.
    home = tmp_path / "berth-home"
    shutil.copytree(cli.env["BERTH_HOME"], home)
    env["BERTH_HOME"] = str(home)
    env["PATH"] = f"{Path(BERTH).parent}{os.pathsep}{env.get('PATH', '')}"
    env["BERTH_SIM_SPEED"] = "20"
    shell = [b for b in found if b.language == "sh"]
    ran = 0
    failures: list[str] = []
    for block in shell:
        if block.skipped:
            continue
        ran += 1
        for command, refused in commands(block):
            if command.startswith("source "):
                continue  # the test runs in the suite's virtualenv already
            if command.startswith("export "):
                name, _, value = command.removeprefix("export ").partition("=")
                env[name] = shlex.split(value)[0] if value else ""
                continue
            started = time.monotonic()
            done = subprocess.run(
                ["bash", "-c", command],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=180,
            )
            with capsys.disabled():
                took = time.monotonic() - started
                print(f"  {took:5.1f}s  exit {done.returncode}  {command[:90]}", flush=True)
            if (done.returncode != 0) != refused:
                failures.append(
                    f"README line {block.line}: `{command}` exited {done.returncode}"
                    f"{' (should be refused)' if refused else ''}\n{done.stdout}{done.stderr}"
                )
    with capsys.disabled():
        print(f"\nREADME sh blocks run: {ran} of {len(shell)} ({len(shell) - ran} marked skip)")
    assert not failures, "\n".join(failures)
