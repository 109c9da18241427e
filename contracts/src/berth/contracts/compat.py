"""Find incompatible changes between a published JSON Schema and its current version.

A published event version never changes incompatibly: consumers written against it must keep
reading what producers send. Incompatible are a removed property, a changed type, a new
required property, removed enum values, narrower bounds, and newly forbidden extra properties.
Adding an optional property, or widening anything, is compatible.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

Schema = dict[str, Any]

# Bounds whose value may only go down (lower limits) or only up (upper limits).
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


ALWAYS_SENT = frozenset({"type", "version", "kind"})
"""Properties every producer has always sent and every consumer has always required when
decoding, though the schemas once left them optional (they have defaults in the models): the
envelope's ``type`` and ``version`` (a message without them never decoded) and a submission's
``kind`` (the union's discriminator: without it pydantic cannot pick a member). Declaring them
required describes what was already true, so no message that was valid becomes invalid."""


def breaking_changes(
    old_schema: Schema, new_schema: Schema, *, always_sent: Collection[str] = ()
) -> list[str]:
    """Every incompatible change from ``old_schema`` to ``new_schema``, one line each.

    A property in ``always_sent`` may become required (see ``ALWAYS_SENT``)."""
    return _Comparison(old_schema, new_schema, always_sent).run()


class _Comparison:
    def __init__(self, old_root: Schema, new_root: Schema, always_sent: Collection[str]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.always_sent = frozenset(always_sent)
        self.problems: list[str] = []
        # Recursive models would loop forever without remembering pairs already compared.
        self.seen: set[tuple[int, int]] = set()

    def run(self) -> list[str]:
        self.compare(self.old_root, self.new_root, "")
        return self.problems

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '<root>'}: {message}")

    def compare(self, old: Schema, new: Schema, path: str) -> None:
        old, new = _resolve(self.old_root, old), _resolve(self.new_root, new)
        if (id(old), id(new)) in self.seen:
            return
        self.seen.add((id(old), id(new)))
        old_types, new_types = self.types(old, self.old_root), self.types(new, self.new_root)
        if _lost(old_types, new_types):
            self.report(path, f"type changed from {_show(old_types)} to {_show(new_types)}")
            return
        old_variants, new_variants = self.variants(old), self.variants(new)
        if len(old_variants) > 1 or len(new_variants) > 1:
            self.compare_variants(old_variants, new_variants, path)
            return
        self.compare_values(old, new, path)
        self.compare_bounds(old, new, path)
        self.compare_object(old, new, path)
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self.compare(old["items"], new["items"], f"{path}[]")

    def compare_variants(
        self, old_variants: list[Schema], new_variants: list[Schema], path: str
    ) -> None:
        old_labels = {_label(old) for old in old_variants}
        for old in old_variants:
            label = _label(old)
            match = self.match_variant(old, new_variants, old_labels - {label})
            if match is None:
                self.report(path, f"variant {label} removed")
            else:
                self.compare(old, match, f"{path}<{label}>" if label != "null" else path)

    def match_variant(
        self, old: Schema, candidates: list[Schema], taken: set[str]
    ) -> Schema | None:
        """The branch of the new union that ``old`` became: same name, else the one of its type."""
        old_label = _label(old)
        for candidate in candidates:
            if _label(candidate) == old_label:
                return candidate
        # A renamed model still matches by type, unless that branch is another old variant.
        old_types = self.types(old, self.old_root)
        same_type = [
            c
            for c in candidates
            if _label(c) not in taken and not _lost(old_types, self.types(c, self.new_root))
        ]
        return same_type[0] if len(same_type) == 1 else None

    def variants(self, node: Schema) -> list[Schema]:
        branches = node.get("anyOf") or node.get("oneOf")
        return list(branches) if isinstance(branches, list) else [node]

    def types(self, node: Schema, root: Schema) -> set[str]:
        node = _resolve(root, node)
        declared = node.get("type")
        if isinstance(declared, str):
            return {declared}
        if isinstance(declared, list):
            return set(declared)
        branches = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if isinstance(branches, list):
            found: set[str] = set()
            for branch in branches:
                found |= self.types(branch, root)
            return found
        values = node["enum"] if "enum" in node else [node["const"]] if "const" in node else None
        if values is not None:
            return {_json_type(value) for value in values}
        if "properties" in node:
            return {"object"}
        return {"any"}

    def compare_values(self, old: Schema, new: Schema, path: str) -> None:
        old_values = _allowed_values(old)
        new_values = _allowed_values(new)
        if new_values is None:
            return
        if old_values is None:
            self.report(path, f"now restricted to {_show_values(new_values)}")
            return
        removed = [value for value in old_values if value not in new_values]
        if removed:
            self.report(path, f"enum values removed: {_show_values(removed)}")

    def compare_bounds(self, old: Schema, new: Schema, path: str) -> None:
        for key in _LOWER_BOUNDS:
            if key in new and (key not in old or new[key] > old[key]):
                self.report(path, f"narrower bound: {key} {old.get(key)} -> {new[key]}")
        for key in _UPPER_BOUNDS:
            if key in new and (key not in old or new[key] < old[key]):
                self.report(path, f"narrower bound: {key} {old.get(key)} -> {new[key]}")
        if "pattern" in new and new.get("pattern") != old.get("pattern"):
            self.report(path, f"pattern changed: {old.get('pattern')!r} -> {new['pattern']!r}")

    def compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        prefix = f"{path}." if path else ""
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.report(f"{prefix}{name}", "property removed")
            else:
                self.compare(old_prop, new_props[name], f"{prefix}{name}")
        newly_required = set(new.get("required", ())) - set(old.get("required", ()))
        for name in sorted(newly_required - self.always_sent):
            self.report(f"{prefix}{name}", "new required property")
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if new_extra is False and old_extra is not False:
            self.report(path, "additional properties no longer allowed")
        elif isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(old_extra, new_extra, f"{prefix}*")


def _resolve(root: Schema, node: Schema) -> Schema:
    """Follow local ``$ref``s (``#/$defs/Name``); a ref with siblings keeps only the target."""
    seen: set[str] = set()
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise ValueError(f"unsupported $ref {ref!r}")
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _label(node: Schema) -> str:
    """How a union branch is recognised across versions: its model name, else its type."""
    if "$ref" in node:
        return str(node["$ref"]).rsplit("/", 1)[-1]
    declared = node.get("type")
    if declared == "object" and "title" in node:
        return str(node["title"])
    if isinstance(declared, str):
        return declared
    return str(node.get("title", "any"))


def _allowed_values(node: Schema) -> list[Any] | None:
    if "enum" in node:
        return list(node["enum"])
    if "const" in node:
        return [node["const"]]
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _lost(old_types: set[str], new_types: set[str]) -> set[str]:
    """Types the old schema accepted that the new one does not."""
    if "any" in new_types:
        return set()
    # Every integer is a number, so integer -> number only widens.
    return {t for t in old_types - new_types if not (t == "integer" and "number" in new_types)}


def _show(types: set[str]) -> str:
    return "|".join(sorted(types))


def _show_values(values: list[Any]) -> str:
    return ", ".join(repr(value) for value in values)
