"""Access rules end to end: the demo rules make alice an L1 researcher in team-a and bob one in
team-b; the suite's default user is the administrator."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from berth.cli.suite import Suite
from tests.e2e.api_client import bearer_token, client, live_events
from tests.e2e.conftest import Cli

POLICY = "defaults:\n  backoffLimit: 3\nrules:\n  backoffLimit: {max: 5}\n"


def _submit(cli: Cli, name: str, project: str = "team-a") -> None:
    done = cli.run(
        "training",
        "submit",
        name,
        "-p",
        project,
        "-i",
        "pytorch/pytorch",
        "--annotation",
        "berth.dev/sim-runtime-seconds=3600",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    deadline = time.monotonic() + 60
    while cli.json("describe", name, "-p", project)["status"] != "Running":
        assert time.monotonic() < deadline, f"{name} never ran"
        time.sleep(0.2)


def _policy(cli: Cli, tmp_path: Path, project: str) -> tuple[int, str]:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    done = cli.run(
        "policy",
        "apply",
        "-f",
        str(path),
        "--type",
        "training",
        "--scope",
        "project",
        "--project",
        project,
    )
    return done.returncode, done.stdout + done.stderr


def test_bob_can_neither_see_nor_touch_alices_team_a_workload(cli: Cli, tmp_path: Path) -> None:
    alice, bob = cli.as_user("alice@example.com"), cli.as_user("bob@example.com")
    who = f"who-{uuid.uuid4().hex[:6]}"
    _submit(alice, who)

    assert who not in {w["name"] for w in bob.json("list", "-p", "team-a")}
    assert who not in {w["name"] for w in bob.json("list", "-A")}
    described = bob.run("describe", who, "-p", "team-a")
    assert described.returncode == 1
    assert "forbidden: bob@example.com may not read workloads in project team-a" in (
        described.stderr
    )
    assert bob.run("trace", who, "-p", "team-a").returncode == 1

    deleted = bob.run("delete", who, "-p", "team-a")
    assert deleted.returncode == 1
    assert (
        "forbidden: bob@example.com may not delete trainings in project team-a "
        "(no access rule grants trainings.delete there)"
    ) in deleted.stderr.replace("\n", " ")
    suspended = bob.run("suspend", who, "-p", "team-a")
    assert suspended.returncode == 1
    assert "may not suspend trainings in project team-a" in suspended.stderr.replace("\n", " ")
    refused = bob.run("training", "submit", "x", "-p", "team-a", "-i", "busybox")
    assert refused.returncode == 1
    assert "may not submit trainings in project team-a" in refused.stdout + refused.stderr
    code, said = _policy(bob, tmp_path, "team-a")
    assert code != 0 and "may not apply policies in project team-a" in said.replace("\n", " ")

    # Still there for alice, who may read and act in team-a.
    assert alice.json("describe", who, "-p", "team-a")["status"] == "Running"
    assert who in {w["name"] for w in alice.json("list", "-p", "team-a")}
    assert {w["project"] for w in alice.json("list", "-A")} <= {"team-a"}
    done = alice.run("suspend", who, "-p", "team-a", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    done = alice.run("resume", who, "-p", "team-a")
    assert done.returncode == 0, done.stdout + done.stderr
    # An L1 researcher reads policies but does not change them (Run:ai's matrix).
    code, said = _policy(alice, tmp_path, "team-a")
    assert code != 0 and "may not apply policies" in said.replace("\n", " ")

    # The administrator may everywhere: sees both projects, changes team-a's policy, deletes.
    assert who in {w["name"] for w in cli.json("list", "-A")}
    code, said = _policy(cli, tmp_path, "team-a")
    assert code == 0, said
    done = cli.run(
        "policy", "delete", "--type", "training", "--scope", "project", "--project", "team-a"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    done = cli.run("delete", who, "-p", "team-a")
    assert done.returncode == 0, done.stdout + done.stderr


def test_access_rules_are_granted_and_revoked_by_who_may(cli: Cli) -> None:
    bob = cli.as_user("bob@example.com")
    refused = bob.run(
        "access-rule", "create", "--subject", "bob@example.com", "--role", "Viewer",
        "--scope", "project", "--scope-name", "team-a",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "forbidden: bob@example.com may not grant access-rules" in refused.stderr.replace(
        "\n", " "
    )

    granted = cli.json(
        "access-rule", "create", "--subject", "dave@example.com", "--role", "Viewer",
        "--scope", "project", "--scope-name", "team-b",
    )  # fmt: skip
    dave = cli.as_user("dave@example.com")
    assert {w["project"] for w in dave.json("list", "-A")} <= {"team-b"}
    assert dave.run("delete", "anything", "-p", "team-b").returncode == 1
    mine = dave.json("access-rule", "list")
    assert [r["id"] for r in mine] == [granted["id"]]

    done = cli.run("access-rule", "delete", granted["id"])
    assert done.returncode == 0, done.stdout + done.stderr
    assert granted["id"] not in {r["id"] for r in cli.json("access-rule", "list")}

    roles = cli.run("role", "list")
    assert roles.returncode == 0
    assert max(len(line) for line in roles.stdout.splitlines()) <= 80


def test_the_live_stream_carries_only_what_its_caller_may_read(cli: Cli, suite: Suite) -> None:
    hidden, shown = f"hid-{uuid.uuid4().hex[:6]}", f"shw-{uuid.uuid4().hex[:6]}"
    subjects: list[str] = []
    names: list[str] = []
    connected, saw_shown = threading.Event(), threading.Event()

    def follow() -> None:
        # bob asks for every project's events: he gets his own project's, never team-a's.
        with (
            client(suite.api_url, bearer_token(cli, "bob@example.com")) as bob,
            bob.stream("GET", "/api/v1/workloads/events") as stream,
        ):
            for event in live_events(stream, connected):
                subjects.append(event["subject"])
                name = ((event.get("data") or {}).get("workload") or {}).get("name", "")
                names.append(name)
                if name == shown:
                    saw_shown.set()
                    return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    assert connected.wait(30)
    _submit(cli, hidden, "team-a")  # runs before the shown one is even submitted
    _submit(cli, shown, "team-b")
    assert saw_shown.wait(60), names
    assert hidden not in names
    hidden_id = cli.json("describe", hidden, "-p", "team-a")["workloadId"]
    assert hidden_id not in subjects
