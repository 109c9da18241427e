"""Building one complete submission from a template, assets and the submitter's own values.

Pure functions: the caller fetches the candidate assets (by request-reply, or from the catalog
projection when the catalog does not answer) and this module picks, checks and merges them the
way the submission form does: template first, then the environment, compute resource and data
sources (the template's unless the submission names others), then the template's specific values,
and last the submitter's own values, which win.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from berth.contracts.catalog import (
    CREDENTIAL_KEYS,
    DATASOURCE_CREDENTIAL,
    DATASOURCE_STORAGE,
    UNUSABLE_STATUSES,
    AssetRef,
    AssetView,
    credential_secret_name,
    visible_to,
)
from berth.contracts.events import Issue, UsedAsset

# The most specific scope wins when a name exists at several levels of a project's tree.
_SCOPE_RANK = {"project": 0, "department": 1, "cluster": 2, "tenant": 3}
# Environment fields copied as they are into the workload spec.
_ENVIRONMENT_FIELDS = ("image", "imagePullPolicy", "command", "args", "workingDir")


def wanted(submission: dict[str, Any], candidates: Iterable[AssetView]) -> list[AssetRef]:
    """The assets a raw submission needs, given those already fetched (templates name more)."""
    refs: list[tuple[str, str]] = []

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    template = text(submission.get("template"))
    if template:
        refs.append(("template", template))
    names = {k: text(submission.get(k)) for k in ("environment", "compute")}
    sources = submission.get("dataSources")
    ds_names = [s for s in sources if isinstance(s, str)] if isinstance(sources, list) else []
    fetched = list(candidates)
    for t in fetched:
        if t.kind == "template" and t.name == template:
            names = {k: names[k] or text(t.spec.get(k)) for k in names}
            ds_names += [s for s in t.spec.get("dataSources", []) if isinstance(s, str)]
    refs += [(k, n) for k, n in names.items() if n]
    refs += [("datasource", n) for n in ds_names]
    for a in fetched:
        if a.kind == "datasource" and a.name in ds_names and a.spec.get("credential"):
            refs.append(("credential", a.spec["credential"]))
        if a.kind == "environment" and a.name == names["environment"]:
            refs += [("credential", c) for c in _env_credentials(a.spec)]
    refs += [("credential", c) for c in _env_credentials(submission.get("spec") or {})]
    return [AssetRef(kind=k, name=n) for k, n in dict.fromkeys(refs)]  # type: ignore[arg-type]


def names_assets(submission: dict[str, Any]) -> bool:
    return bool(
        submission.get("template")
        or submission.get("environment")
        or submission.get("compute")
        or submission.get("dataSources")
        or _env_credentials(submission.get("spec") or {})
    )


def _env_credentials(spec: Any) -> list[str]:
    found = []
    for var in (spec.get("environmentVariables") or []) if isinstance(spec, dict) else []:
        credential = var.get("credential") if isinstance(var, dict) else None
        if isinstance(credential, dict) and isinstance(credential.get("name"), str):
            found.append(credential["name"])
    return found


@dataclass
class Resolved:
    submission: dict[str, Any]
    used: list[UsedAsset] = field(default_factory=list)


@dataclass
class _Picker:
    project: str
    scopes: set[tuple[str, str]]
    candidates: list[AssetView]
    issues: list[Issue] = field(default_factory=list)
    used: dict[str, UsedAsset] = field(default_factory=dict)

    def pick(self, kind: str, name: str, where: str) -> AssetView | None:
        same = [c for c in self.candidates if c.kind == kind and c.name == name]
        if not same:
            self.issues.append(Issue(field=where, details=f'{kind} "{name}" does not exist'))
            return None
        visible = sorted(
            (c for c in same if visible_to(c, self.scopes)), key=lambda c: _SCOPE_RANK[c.scope]
        )
        if not visible:
            owners = ", ".join(sorted({f"{c.scope} {c.scopeName}".strip() for c in same}))
            self.issues.append(
                Issue(
                    field=where,
                    details=f'{kind} "{name}" is outside the scope of project "{self.project}" '
                    f"(it belongs to {owners})",
                )
            )
            return None
        chosen = visible[0]
        self.used.setdefault(chosen.id, UsedAsset(kind=kind, name=name, assetId=chosen.id))
        return chosen


def resolve(
    submission: dict[str, Any],
    *,
    project: str,
    scopes: set[tuple[str, str]],
    candidates: list[AssetView],
) -> Resolved | list[Issue]:
    """The complete submission, or every named reason it cannot be built."""
    kind = str(submission.get("kind", ""))
    picker = _Picker(project, scopes, candidates)
    template = None
    if submission.get("template"):
        template = picker.pick("template", submission["template"], "template")
        wanted_type = template.spec.get("workloadType") if template else None
        if template and wanted_type and wanted_type != kind:
            picker.issues.append(
                Issue(
                    field="template",
                    details=f'template "{template.name}" is for {wanted_type} workloads, '
                    f"not {kind}",
                )
            )
    from_template = template.spec if template else {}
    env_name = submission.get("environment") or from_template.get("environment")
    compute_name = submission.get("compute") or from_template.get("compute")
    ds_names = list(
        dict.fromkeys(
            [*from_template.get("dataSources", []), *(submission.get("dataSources") or [])]
        )
    )

    spec: dict[str, Any] = {}
    environment = picker.pick("environment", env_name, "environment") if env_name else None
    if environment:
        supported = environment.spec.get("workloadSupportedTypes") or []
        if kind not in supported:
            picker.issues.append(
                Issue(
                    field="environment",
                    details=f'environment "{environment.name}" does not support {kind} workloads '
                    f"(it supports {', '.join(supported) or 'none'})",
                )
            )
        spec = merge(spec, environment_values(environment.spec))
    compute = picker.pick("compute", compute_name, "compute") if compute_name else None
    if compute:
        spec = merge(spec, {"compute": compute.spec})
    for i, name in enumerate(ds_names):
        source = picker.pick("datasource", name, f"dataSources.{i}")
        if source is None:
            continue
        if source.status in UNUSABLE_STATUSES:
            why = f": {source.statusReason}" if source.statusReason else ""
            picker.issues.append(
                Issue(
                    field=f"dataSources.{i}",
                    details=f'data source "{name}" cannot be used: its status is '
                    f'"{source.status}"{why}',
                )
            )
            continue
        volume = datasource_volume(source, picker, f"dataSources.{i}")
        if volume is not None:
            spec = merge(spec, {"storage": volume})
    spec = merge(spec, from_template.get("spec") or {})
    spec = merge(spec, submission.get("spec") or {})
    _check_env_credentials(spec, picker)
    if picker.issues:
        return picker.issues
    resolved = dict(submission)
    resolved["spec"] = spec
    for key, value in (
        ("template", template.name if template else None),
        ("environment", environment.name if environment else None),
        ("compute", compute.name if compute else None),
        ("dataSources", ds_names or None),
    ):
        if value:
            resolved[key] = value
    return Resolved(submission=resolved, used=list(picker.used.values()))


def environment_values(env: dict[str, Any]) -> dict[str, Any]:
    """The workload spec fields an environment fills in."""
    spec = {k: env[k] for k in _ENVIRONMENT_FIELDS if env.get(k) is not None}
    if env.get("environmentVariables"):
        spec["environmentVariables"] = env["environmentVariables"]
    security = {k: env[k] for k in ("runAsUid", "runAsGid") if env.get(k) is not None}
    if security:
        spec["security"] = security
    urls = []
    for tool in env.get("tools") or []:
        url: dict[str, Any] = {
            "container": tool["containerPort"],
            "toolType": tool.get("toolType", "custom"),
            "toolName": tool["name"],
            "name": tool["name"],
        }
        if tool.get("access") == "groups":
            url["authorizedGroups"] = tool["groups"]
        elif tool.get("access") == "users":
            url["authorizedUsers"] = tool["users"]
        urls.append(url)
    if urls:
        spec["exposedUrls"] = urls
    return spec


def datasource_volume(
    source: AssetView, picker: _Picker, where: str
) -> dict[str, list[dict[str, Any]]] | None:
    """The storage section item a data source becomes; its credential as a Secret reference."""
    kind = source.spec["type"]
    key, _ = DATASOURCE_STORAGE[kind]
    volume = {"name": source.name, **source.spec.get("volume", {})}
    credential_name = source.spec.get("credential")
    if credential_name:
        credential = picker.pick("credential", credential_name, f"{where}.credential")
        if credential is None:
            return None
        needed = DATASOURCE_CREDENTIAL[kind]
        if credential.spec.get("type") != needed:
            picker.issues.append(
                Issue(
                    field=f"{where}.credential",
                    details=f'credential "{credential.name}" is of type '
                    f"{credential.spec.get('type')}; a {kind} data source needs {needed}",
                )
            )
            return None
        secret = credential_secret_name(credential.name)
        volume["passwordSecret" if kind == "git" else "accessKeySecret"] = secret
    return {key: [volume]}


def _check_env_credentials(spec: dict[str, Any], picker: _Picker) -> None:
    for i, var in enumerate(spec.get("environmentVariables") or []):
        ref = var.get("credential") if isinstance(var, dict) else None
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str):
            continue
        where = f"spec.environmentVariables.{i}.credential"
        credential = picker.pick("credential", ref["name"], where)
        if credential is None:
            continue
        ctype = credential.spec.get("type", "")
        keys = CREDENTIAL_KEYS.get(ctype) or tuple(credential.spec.get("keys", ()))
        if ref.get("key") not in keys:
            picker.issues.append(
                Issue(
                    field=where,
                    details=f'credential "{credential.name}" is of type {ctype}, which has no key '
                    f'"{ref.get("key")}" (it has {", ".join(keys) or "none"})',
                )
            )


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: nested sections merge, storage lists add up, environment
    variables replace by name, any other value is replaced; None means "not set" (as in every
    spec), so it replaces nothing."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if value is None:
            out.setdefault(key, None)
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge_section(key, old, value)
        elif key == "environmentVariables" and isinstance(old, list) and isinstance(value, list):
            names = {v.get("name") for v in value if isinstance(v, dict)}
            out[key] = [v for v in old if v.get("name") not in names] + value
        else:
            out[key] = value
    return out


def _merge_section(key: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if key != "storage":
        return merge(old, new)
    out = dict(old)
    for kind, items in new.items():
        out[kind] = [*(out.get(kind) or []), *(items or [])]
    return out
