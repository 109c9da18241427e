"""The field catalog: every path a policy of a workload type may name, with its value type.

Derived from the workload spec models, so a field added to the spec can be ruled at once.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel

from berth.contracts.policy import PolicyType
from berth.contracts.quantity import Quantity
from berth.contracts.workload import SPEC_MODELS, MasterSpec

ValueType = Literal[
    "boolean", "string", "integer", "number", "quantity", "array", "instances", "section"
]
NUMERIC: frozenset[ValueType] = frozenset({"integer", "number", "quantity"})

# Field paths per kind, from the spec models of the submission union; a distributed training's
# fields are its workers' and its master's.
_SPECS: dict[str, dict[str, type[BaseModel]]] = {
    kind: {"": spec} for kind, spec in SPEC_MODELS.items()
}
_SPECS["distributed"] = {"worker.": SPEC_MODELS["distributed"], "master.": MasterSpec}


@dataclass(frozen=True)
class FieldInfo:
    path: str
    vtype: ValueType
    choices: tuple[Any, ...] = ()
    key: str | None = None  # key attribute of an itemized field's items
    item_model: type[BaseModel] | None = None


def _unwrap(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _scalar(annotation: Any) -> tuple[ValueType, tuple[Any, ...]] | None:
    ann = _unwrap(annotation)
    if ann == Quantity:
        return "quantity", ()
    if typing.get_origin(ann) is Literal:
        return "string", typing.get_args(ann)
    if ann is bool:
        return "boolean", ()
    if ann is int:
        return "integer", ()
    if ann is float:
        return "number", ()
    if ann is str:
        return "string", ()
    return None


def _walk_model(model: type[BaseModel], prefix: str, out: dict[str, FieldInfo]) -> None:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = _unwrap(info.annotation)
        scalar = _scalar(ann)
        if scalar is not None:
            out[path] = FieldInfo(path, scalar[0], scalar[1])
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            out[path] = FieldInfo(path, "section")
            _walk_model(ann, f"{path}.", out)
        elif typing.get_origin(ann) is list:
            (item,) = typing.get_args(ann)
            if isinstance(item, type) and issubclass(item, BaseModel):
                fields = item.model_fields
                key = next((k for k in ("name", "resource", "id") if k in fields), None)
                out[path] = FieldInfo(path, "section", key=key, item_model=item)
                out[f"{path}.instances"] = FieldInfo(
                    f"{path}.instances", "instances", key=key, item_model=item
                )
                out[f"{path}.attributes"] = FieldInfo(f"{path}.attributes", "section")
                for attr, attr_info in fields.items():
                    attr_type = _scalar(attr_info.annotation)
                    if attr_type is not None and attr not in (key, "exclude"):
                        attr_path = f"{path}.attributes.{attr}"
                        out[attr_path] = FieldInfo(attr_path, attr_type[0], attr_type[1])
            else:
                out[path] = FieldInfo(path, "array")


@cache
def catalog(policy_type: PolicyType) -> Mapping[str, FieldInfo]:
    """Every path a policy of this type may name, with its value type."""
    out: dict[str, FieldInfo] = {}
    for prefix, model in _SPECS[policy_type].items():
        if prefix:
            out[prefix[:-1]] = FieldInfo(prefix[:-1], "section")
        _walk_model(model, prefix, out)
    return out


def storage_path(policy_type: PolicyType, kind: str) -> str:
    """The itemized field a data source of ``kind`` joins."""
    return f"worker.storage.{kind}" if policy_type == "distributed" else f"storage.{kind}"
