"""`berth policy` argument handling and rendering, without any service."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from berth.cli.policy_commands import effective_table, policy_app
from berth.contracts.policy import EffectiveDefault, EffectivePolicy, EffectiveRule, ScopeRef

runner = CliRunner()


def test_a_scope_needs_its_id() -> None:
    done = runner.invoke(policy_app, ["get", "--type", "training", "--scope", "project"])
    assert done.exit_code == 2
    assert "--scope project needs --project" in done.output


def test_a_malformed_file_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {}\nrule: {}\n", "utf-8")
    done = runner.invoke(
        policy_app, ["apply", "-f", str(bad), "--type", "training", "--scope", "tenant"]
    )
    assert done.exit_code == 2
    assert "rule" in done.output


def test_effective_table_shows_each_source() -> None:
    dept, project = ScopeRef(scope="department", id="research"), ScopeRef(scope="project", id="b")
    effective = EffectivePolicy(
        type="training",
        branch=[dept, project],
        defaults=[EffectiveDefault(field="backoffLimit", value=3, source=dept)],
        rules=[
            EffectiveRule(field="backoffLimit", rule={"max": 5}, source=project),
            EffectiveRule(field="compute.gpuDevicesRequest", rule={"max": 2}, source=dept),
        ],
    )
    console = Console(width=200, record=True)
    console.print(effective_table(effective))
    text = console.export_text()
    assert "department research" in text and "project b" in text
    assert '{"max": 2}' in text
