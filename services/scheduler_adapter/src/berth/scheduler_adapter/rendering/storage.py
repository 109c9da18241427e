"""Storage → pod volumes, container mounts, init containers and the claims to create.

Credentials never appear in a manifest: private Git repositories and S3 buckets are reached
through references to Secrets of the project's namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.contracts.spec.storage import (
    S3,
    AccessModes,
    ConfigMapVolume,
    Git,
    HostPath,
    Nfs,
    Pvc,
    SecretVolume,
    Storage,
)
from berth.contracts.workload import BaseSpec
from berth.scheduler_adapter.rendering.metadata import object_meta

# Image of the init container cloning Git data sources; pinned so a render is reproducible.
GIT_IMAGE = "alpine/git:2.45.2"
# FUSE mounter of S3 buckets, run as a native sidecar; reads the credentials from files
# mounted at S3_CREDENTIALS_PATH.
S3_IMAGE = "efrecon/s3fs:1.94"
S3_CREDENTIALS_PATH = "/etc/berth/s3"
# A claim must request a size; this one is asked for when the spec names none.
DEFAULT_CLAIM_SIZE = "10Gi"

_DNS_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass
class RenderedStorage:
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    # Objects to create with the workload (new claims), in apply order.
    objects: list[dict[str, Any]] = field(default_factory=list)
    # Names of the created claims the workload owns (deleted with it).
    ephemeral_claims: list[str] = field(default_factory=list)


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as a lower-case DNS label (volume and object names must be one)."""
    label = _DNS_LABEL.sub("-", text.lower()).strip("-")[:limit].strip("-")
    return label or "x"


def access_modes(modes: AccessModes | None) -> list[str]:
    if modes is None:
        return ["ReadWriteOnce"]
    result = [
        mode
        for mode, wanted in (
            ("ReadWriteOnce", modes.readWriteOnce),
            ("ReadOnlyMany", modes.readOnlyMany),
            ("ReadWriteMany", modes.readWriteMany),
        )
        if wanted
    ]
    return result or ["ReadWriteOnce"]


def _claim(
    workload: WorkloadRef, spec: BaseSpec, trace_id: str | None, pvc: Pvc, claim_name: str
) -> dict[str, Any]:
    info = pvc.claimInfo
    claim_spec: dict[str, Any] = {
        "accessModes": access_modes(info.accessModes if info else None),
        "resources": {"requests": {"storage": (info.size if info else None) or DEFAULT_CLAIM_SIZE}},
    }
    if info and info.storageClass:
        claim_spec["storageClassName"] = info.storageClass
    if info and info.volumeMode:
        claim_spec["volumeMode"] = info.volumeMode
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(workload, spec, trace_id, name=claim_name),
        "spec": claim_spec,
    }


def _pvc(
    out: RenderedStorage,
    workload: WorkloadRef,
    spec: BaseSpec,
    trace_id: str | None,
    index: int,
    pvc: Pvc,
    prefix: str,
) -> None:
    volume = dns_label(f"pvc-{pvc.name or index}")
    if pvc.existingPvc:
        claim_name = str(pvc.claimName)
    else:
        claim_name = pvc.claimName or dns_label(f"{prefix}-{volume}", 253)
        out.objects.append(_claim(workload, spec, trace_id, pvc, claim_name))
        if pvc.ephemeral:
            out.ephemeral_claims.append(claim_name)
    source: dict[str, Any] = {"claimName": claim_name}
    if pvc.readOnly:
        source["readOnly"] = True
    out.volumes.append({"name": volume, "persistentVolumeClaim": source})
    out.mounts.append(_mount(volume, pvc.path, pvc.readOnly))


def _mount(volume: str, path: str, read_only: bool | None) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": volume, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount


def _git(out: RenderedStorage, index: int, git: Git) -> None:
    volume = dns_label(f"git-{git.name or index}")
    # Cloned by an init container into an emptyDir, so the main container starts with the
    # checkout in place and needs neither git nor the credentials.
    out.volumes.append({"name": volume, "emptyDir": {}})
    out.mounts.append(_mount(volume, git.path, None))
    args = ["clone", "--depth", "1"]
    if git.branch:
        args += ["--branch", git.branch]
    script = 'git clone "$@" /checkout'
    if git.revision:
        # A shallow clone cannot check out an arbitrary revision.
        args = ["clone"] + (["--branch", git.branch] if git.branch else [])
        # Through the environment, quoted, so no revision text is ever run by the shell.
        script = 'git clone "$@" /checkout && git -C /checkout checkout "$GIT_REVISION"'
    env: list[dict[str, Any]] = []
    if git.revision:
        env.append({"name": "GIT_REVISION", "value": git.revision})
    repository = git.repository
    if git.passwordSecret:
        for name, key in (
            ("GIT_USER", git.secretKeyOfUser or "User"),
            ("GIT_PASSWORD", git.secretKeyOfPassword or "Password"),
        ):
            ref = {"name": git.passwordSecret, "key": key}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        # git reads the credentials from the environment through a helper, so they never
        # appear in the pod's command line or the manifest.
        script = (
            "git config --global credential.helper "
            "'!f() { echo username=$GIT_USER; echo password=$GIT_PASSWORD; }; f' && " + script
        )
    init: dict[str, Any] = {
        "name": f"git-clone-{index}",
        "image": GIT_IMAGE,
        "command": ["/bin/sh", "-c", script, "git-clone", *args[1:], repository],
        "volumeMounts": [{"name": volume, "mountPath": "/checkout"}],
    }
    if env:
        init["env"] = env
    out.init_containers.append(init)


def _nfs(out: RenderedStorage, index: int, nfs: Nfs) -> None:
    volume = dns_label(f"nfs-{nfs.name or index}")
    read_only = True if nfs.readOnly is None else nfs.readOnly
    out.volumes.append(
        {"name": volume, "nfs": {"server": nfs.server, "path": nfs.path, "readOnly": read_only}}
    )
    out.mounts.append(_mount(volume, nfs.mountPath, read_only))


def _host_path(out: RenderedStorage, index: int, host: HostPath) -> None:
    volume = dns_label(f"host-{host.name or index}")
    out.volumes.append({"name": volume, "hostPath": {"path": host.path}})
    # Read-only unless asked otherwise, as Run:ai: a writable node directory is the exception.
    mount = _mount(volume, host.mountPath, True if host.readOnly is None else host.readOnly)
    if host.mountPropagation:
        mount["mountPropagation"] = host.mountPropagation
    out.mounts.append(mount)


def _config_map(out: RenderedStorage, index: int, item: ConfigMapVolume) -> None:
    volume = dns_label(f"configmap-{item.name or index}")
    out.volumes.append({"name": volume, "configMap": {"name": item.configMap}})
    out.mounts.append(_mount(volume, item.mountPath, True))


def _secret(out: RenderedStorage, index: int, item: SecretVolume) -> None:
    volume = dns_label(f"secret-{item.name or index}")
    out.volumes.append({"name": volume, "secret": {"secretName": item.secret}})
    out.mounts.append(_mount(volume, item.mountPath, True))


def _s3(out: RenderedStorage, index: int, s3: S3) -> None:
    volume = dns_label(f"s3-{s3.name or index}", 50)
    # The bucket is mounted by a FUSE sidecar into a volume shared with the main container
    # (Bidirectional propagation needs a privileged sidecar, as every FUSE mount does).
    out.volumes.append({"name": volume, "emptyDir": {}})
    out.mounts.append({"name": volume, "mountPath": s3.path, "mountPropagation": "HostToContainer"})
    env: list[dict[str, Any]] = [
        {"name": "AWS_S3_BUCKET", "value": s3.bucket},
        {"name": "AWS_S3_MOUNT", "value": "/mnt/bucket"},
    ]
    if s3.url:
        env.append({"name": "AWS_S3_URL", "value": s3.url})
    mounts: list[dict[str, Any]] = [
        {"name": volume, "mountPath": "/mnt/bucket", "mountPropagation": "Bidirectional"}
    ]
    if s3.accessKeySecret:
        credentials = f"{volume}-credentials"
        # The credentials Secret is mounted as files, never copied into the manifest.
        out.volumes.append(
            {
                "name": credentials,
                "secret": {
                    "secretName": s3.accessKeySecret,
                    "items": [
                        {"key": s3.secretKeyOfAccessKeyId or "AccessKeyId", "path": "access-key"},
                        {"key": s3.secretKeyOfSecretKey or "SecretKey", "path": "secret-key"},
                    ],
                },
            }
        )
        mounts.append({"name": credentials, "mountPath": S3_CREDENTIALS_PATH, "readOnly": True})
        env += [
            {"name": "AWS_S3_ACCESS_KEY_ID_FILE", "value": f"{S3_CREDENTIALS_PATH}/access-key"},
            {"name": "AWS_S3_SECRET_ACCESS_KEY_FILE", "value": f"{S3_CREDENTIALS_PATH}/secret-key"},
        ]
    else:
        env.append({"name": "S3FS_ARGS", "value": "-o public_bucket=1"})
    # A native sidecar (an init container that keeps running) so a Job still completes when
    # its main container exits.
    out.init_containers.append(
        {
            "name": f"s3-mount-{index}",
            "restartPolicy": "Always",
            "image": S3_IMAGE,
            "env": env,
            "securityContext": {"privileged": True},
            "volumeMounts": mounts,
        }
    )


def render_storage(
    workload: WorkloadRef, spec: BaseSpec, trace_id: str | None, *, role: str | None = None
) -> RenderedStorage:
    """Volumes of one pod template; ``role`` keeps the claims of a distributed job's master
    apart from its workers'."""
    out = RenderedStorage()
    storage = spec.storage
    if storage is None:
        return out
    for index, pvc in enumerate(storage.pvc or ()):
        prefix = f"{workload.name}-{role}" if role else workload.name
        _pvc(out, workload, spec, trace_id, index, pvc, prefix)
    for index, data_volume in enumerate(storage.dataVolume or ()):
        # A data volume is a claim berth's cluster agent provisions in every namespace that may
        # use it, under the data volume's id.
        volume = dns_label(f"data-volume-{index}")
        out.volumes.append(
            {"name": volume, "persistentVolumeClaim": {"claimName": dns_label(data_volume.id)}}
        )
        out.mounts.append(_mount(volume, data_volume.mountPath, None))
    for index, git in enumerate(storage.git or ()):
        _git(out, index, git)
    for index, config_map in enumerate(storage.configMapVolume or ()):
        _config_map(out, index, config_map)
    for index, secret in enumerate(storage.secretVolume or ()):
        _secret(out, index, secret)
    if isinstance(storage, Storage):
        for index, host in enumerate(storage.hostPath or ()):
            _host_path(out, index, host)
        for index, nfs in enumerate(storage.nfs or ()):
            _nfs(out, index, nfs)
        for index, s3 in enumerate(storage.s3 or ()):
            _s3(out, index, s3)
    return out
