"""Commands built from tables of options.

Several commands share most of their options (the submit command of each workload kind, the
create command of each catalog kind). Each option is declared once, as an ``Opt``; a command is
a list of them plus a body that receives the parsed values by name. Typer reads the generated
signature as if the function had been written out by hand.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

import typer


@dataclass(frozen=True)
class Opt:
    """One command-line option (or, with ``argument``, a positional argument)."""

    name: str
    decls: tuple[str, ...]
    type: Any
    help: str
    metavar: str | None = None
    default: Any = None
    required: bool = False
    argument: bool = False
    hidden: bool = False
    callback: Callable[[Any], Any] | None = None

    def but(self, **changes: Any) -> Opt:
        return replace(self, **changes)

    def parameter(self) -> inspect.Parameter:
        info: Any
        if self.argument:
            info = typer.Argument(metavar=self.metavar, help=self.help, show_default=False)
        else:
            is_flag = self.type is bool or self.type == (bool | None)
            info = typer.Option(
                *self.decls,
                help=self.help,
                # Flags take no value: no metavar at all rather than typer's "<bool>".
                metavar="" if is_flag else self.metavar,
                hidden=self.hidden,
                callback=self.callback,
                show_default=bool(self.default) and not is_flag,
            )
        default = inspect.Parameter.empty if self.required else self.default
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=default,
            annotation=Annotated[self.type, info],
        )


def command(
    opts: Sequence[Opt], body: Callable[[dict[str, Any]], None], doc: str, name: str
) -> Callable[..., None]:
    """A function typer can register, whose parameters are ``opts``."""

    def run(**values: Any) -> None:
        body(values)

    # Keyword-only, so required and optional ones may come in any order: help keeps ours.
    params = [o.parameter() for o in opts]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__ = doc
    run.__name__ = name.replace("-", "_")
    return run
