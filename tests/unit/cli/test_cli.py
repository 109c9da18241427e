"""The CLI without any service: its vocabulary, its output, and its command tables."""

from __future__ import annotations

import socket

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from rich.console import Console
from typer.testing import CliRunner

from berth.cli import output
from berth.cli.main import app
from berth.cli.suggest import closest
from berth.contracts.issues import issues_from
from berth.contracts.workload import WorkloadSubmission

runner = CliRunner()
SUBMISSION: TypeAdapter[WorkloadSubmission] = TypeAdapter(WorkloadSubmission)


def issues_of(body: dict[str, object]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        SUBMISSION.validate_python(body)
    return {i.field: i.details for i in issues_from(caught.value, drop=())}


def training(**spec: object) -> dict[str, object]:
    return {"kind": "training", "name": "t", "projectId": "p", "spec": {"image": "i", **spec}}


class TestVocabulary:
    def test_bounds_name_the_limit_and_the_value(self) -> None:
        found = issues_of(training(compute={"cpuCoreRequest": -3}))
        assert found == {"spec.compute.cpuCoreRequest": "must be greater than 0.0; got -3"}

    def test_choices_are_lowercase_where_users_write_them_so(self) -> None:
        body = {**training(), "kind": "distributed"}
        body["spec"] = {"image": "i", "distributedFramework": "jax"}
        found = issues_of(body)
        assert found["spec.distributedFramework"] == (
            "must be one of pytorch, tf, mpi, xgboost; got 'jax'"
        )

    def test_a_framework_is_accepted_in_any_case(self) -> None:
        body = {**training(), "kind": "distributed"}
        body["spec"] = {"image": "i", "distributedFramework": "pytorch"}
        assert SUBMISSION.validate_python(body).spec.distributedFramework == "PyTorch"  # type: ignore[union-attr]

    def test_no_pydantic_words_remain(self) -> None:
        class Model(BaseModel):
            count: int = Field(ge=1)
            ratio: float = Field(le=1)

        with pytest.raises(ValidationError) as caught:
            Model.model_validate({"count": "x", "ratio": 2})
        found = {i.field: i.details for i in issues_from(caught.value, drop=())}
        assert found == {
            "count": "must be a whole number; got 'x'",
            "ratio": "must be at most 1.0; got 2",
        }
        assert not any("Input should" in d or "Value error" in d for d in found.values())


class TestOutput:
    def test_user_data_is_never_markup(self) -> None:
        console = Console(width=200, record=True)
        output.issues(
            console,
            [{"field": "name", "details": "must match ^[a-z]([-a-z0-9]*[a-z0-9])?$"}],
        )
        grid = output.table("NAME", "MESSAGE")
        output.row(grid, "[bold red]hi[/bold red]", "x")
        output.show(console, grid)
        text = console.export_text()
        assert "^[a-z]([-a-z0-9]*[a-z0-9])?$" in text
        assert "[bold red]hi[/bold red]" in text

    def test_names_stay_whole_at_80_columns(self) -> None:
        console = Console(width=80, record=True)
        grid = output.table("NAME", "KIND", "MESSAGE")
        long_name = "a-rather-long-workload-name-that-must-not-be-cut"
        output.row(grid, long_name, "training", "waiting for " * 12)
        output.show(console, grid)
        assert long_name in console.export_text()


class TestCommands:
    def test_unknown_output_formats_are_refused_in_our_words(self) -> None:
        done = runner.invoke(app, ["list", "-p", "team-a", "-o", "foo"], env={"COLUMNS": "200"})
        assert done.exit_code == 2
        assert "must be one of table, wide, json, yaml, name; got 'foo'" in done.output

    def test_each_kind_has_only_its_own_flags(self) -> None:
        workspace = runner.invoke(app, ["workspace", "submit", "--help"], env={"COLUMNS": "200"})
        inference = runner.invoke(app, ["inference", "submit", "--help"], env={"COLUMNS": "200"})
        pytorch = runner.invoke(
            app, ["training", "pytorch", "submit", "--help"], env={"COLUMNS": "200"}
        )
        assert "--workers" not in workspace.output and "--serving-port" not in workspace.output
        assert "--serving-port" in inference.output and "--backoff-limit" not in inference.output
        assert "--workers" in pytorch.output and "--master-args" in pytorch.output
        for done in (workspace, inference, pytorch):
            ours = [line for line in done.output.splitlines() if "--help" not in line]
            for typer_word in ("<bool>", "<list[str]>", "<int>", "<float>", "<str>", "{NAME}"):
                assert typer_word not in "\n".join(ours)

    def test_a_value_typer_cannot_convert_is_worded_like_the_rest(self) -> None:
        done = runner.invoke(
            app, ["training", "submit", "t", "-p", "a", "--gpu", "two"], env={"COLUMNS": "200"}
        )
        assert done.exit_code == 2
        assert "must be a whole number; got 'two'" in done.output
        assert "Input should" not in done.output

    def test_a_flag_of_another_kind_is_refused(self) -> None:
        done = runner.invoke(app, ["workspace", "submit", "w", "-p", "a", "--workers", "2"])
        assert done.exit_code == 2

    @pytest.mark.timeout(60)
    def test_a_server_that_is_not_there_is_said_once_not_retried_forever(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # Nothing listens on the port now: the command gives up after its one attempt.
        done = runner.invoke(
            app, ["status", "--nats-url", f"nats://127.0.0.1:{port}"], env={"COLUMNS": "200"}
        )
        assert done.exit_code == 2
        assert f"cannot reach NATS at nats://127.0.0.1:{port}" in done.output
        assert "Traceback" not in done.output

    @pytest.mark.timeout(60)
    def test_an_unreachable_server_is_one_line_on_a_narrow_terminal(self) -> None:
        url = "nats://127.0.0.1:1"
        done = runner.invoke(
            app, ["list", "-p", "team-a"], env={"COLUMNS": "60", "BERTH_NATS_URL": url}
        )
        assert done.exit_code == 2
        [line] = done.output.splitlines()
        assert line.startswith(f"error: cannot reach NATS at {url}: ")

    def test_without_a_running_berth_or_a_url_nothing_is_guessed(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: object
    ) -> None:
        # 127.0.0.1:4222 may well answer (somebody else's NATS): it is not tried.
        monkeypatch.setenv("BERTH_HOME", str(tmp_path))
        monkeypatch.delenv("BERTH_NATS_URL", raising=False)
        done = runner.invoke(app, ["list", "-p", "team-a"], env={"COLUMNS": "200"})
        assert done.exit_code == 2
        [line] = done.output.splitlines()
        assert line.startswith("error: berth is not running: no `berth up` is recorded in ")

    def test_version(self) -> None:
        done = runner.invoke(app, ["--version"])
        assert done.exit_code == 0 and done.output.startswith("berth ")

    def test_without_a_project_the_cli_says_how_to_choose_one(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: object
    ) -> None:
        monkeypatch.setenv("BERTH_HOME", str(tmp_path))
        monkeypatch.delenv("BERTH_PROJECT", raising=False)
        done = runner.invoke(app, ["list"])
        assert done.exit_code == 2
        assert "berth project set" in " ".join(done.output.split())


def test_did_you_mean() -> None:
    assert closest("team-z", ["team-a", "team-b", "research"]) in (
        ' (did you mean "team-a" or "team-b"?)',
        ' (did you mean "team-b" or "team-a"?)',
    )
    assert closest("zzz", ["team-a"]) == ""


def test_cluster_settings_read_as_indented_lines_not_wrapped_json() -> None:
    from berth.cli.cluster_commands import _outline

    lines = list(
        _outline(
            {
                "kai": {"shards": ["", "a100"], "gpuSharing": True, "version": "v0.17.0"},
                "knative": None,
                "workloadApis": {"MPIJob": "kubeflow.org/v2beta1"},
            },
            "  ",
        )
    )
    assert lines == [
        "  kai:",
        "    gpuSharing: true",
        '    shards: "", a100',
        "    version: v0.17.0",
        "  knative: -",
        "  workloadApis:",
        "    MPIJob: kubeflow.org/v2beta1",
    ]
    assert max(len(line) for line in lines) < 80
