"""Volumes and data sources mounted into a workload (Run:ai ``StorageFields``)."""

from __future__ import annotations

from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from berth.contracts.quantity import Quantity
from berth.contracts.spec.base import SpecModel, duplicates, raise_problems, system_default

_NAME = "Unique name of this volume, used by policies to lock or exclude it."
_MOUNT_PATH = "Path inside the container where it is mounted."


class AccessModes(SpecModel):
    """Access modes requested for a new claim."""

    readWriteOnce: bool | None = Field(
        default=None,
        description="Read-write by one node.",
        json_schema_extra=system_default(True),
    )
    readOnlyMany: bool | None = Field(
        default=None,
        description="Read-only by many nodes.",
        json_schema_extra=system_default(False),
    )
    readWriteMany: bool | None = Field(
        default=None,
        description="Read-write by many nodes.",
        json_schema_extra=system_default(False),
    )


class ClaimInfo(SpecModel):
    """How to create a new PersistentVolumeClaim; not given for an existing one."""

    size: Quantity | None = Field(default=None, description="Claim size, e.g. 50G.")
    storageClass: str | None = Field(
        default=None, min_length=1, description="Storage class; the cluster default if unset."
    )
    accessModes: AccessModes | None = Field(default=None, description="Requested access modes.")
    volumeMode: Literal["Filesystem", "Block"] | None = Field(
        default=None,
        description="Filesystem or raw block device.",
        json_schema_extra=system_default("Filesystem"),
    )


class Pvc(SpecModel):
    """A PersistentVolumeClaim, existing or created for the workload."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    existingPvc: bool | None = Field(
        default=None,
        description="True to mount an existing claim; false to create one.",
        json_schema_extra=system_default(False),
    )
    claimName: str | None = Field(
        default=None,
        min_length=1,
        description="Name of the claim; generated from the workload name if unset.",
    )
    path: str = Field(min_length=1, description=_MOUNT_PATH)
    readOnly: bool | None = Field(
        default=None, description="Mount read-only.", json_schema_extra=system_default(False)
    )
    ephemeral: bool | None = Field(
        default=None,
        description="Delete the claim when the workload stops (volume persistency).",
        json_schema_extra=system_default(False),
    )
    claimInfo: ClaimInfo | None = Field(default=None, description="How to create the claim.")

    @model_validator(mode="after")
    def _check_existing(self) -> Self:
        problems: list[str] = []
        if self.existingPvc and self.claimName is None:
            problems.append("claimName is required when existingPvc is true")
        if self.existingPvc and self.claimInfo is not None:
            problems.append("claimInfo is not allowed when existingPvc is true")
        raise_problems(problems)
        return self


class Git(SpecModel):
    """A Git repository cloned into the container."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    repository: str = Field(min_length=1, description="URL of the remote repository.")
    branch: str | None = Field(default=None, min_length=1, description="Branch to check out.")
    revision: str | None = Field(default=None, min_length=1, description="Revision to check out.")
    path: str = Field(min_length=1, description=_MOUNT_PATH)
    passwordSecret: str | None = Field(
        default=None, min_length=1, description="Secret with the user and password (private repo)."
    )
    secretKeyOfUser: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the user name in passwordSecret.",
        json_schema_extra=system_default("User"),
    )
    secretKeyOfPassword: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the password in passwordSecret.",
        json_schema_extra=system_default("Password"),
    )

    @field_validator("repository")
    @classmethod
    def _no_inline_password(cls, repository: str) -> str:
        # Credentials travel only as Secret references, never inside the spec.
        if urlsplit(repository).password is not None:
            raise ValueError("repository must not embed a password; use passwordSecret")
        return repository


class S3(SpecModel):
    """An S3 bucket mounted into the container."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    bucket: str = Field(min_length=1, description="Name of the bucket.")
    path: str = Field(min_length=1, description=_MOUNT_PATH)
    url: str | None = Field(
        default=None, min_length=1, description="S3 endpoint; AWS S3 when unset."
    )
    accessKeySecret: str | None = Field(
        default=None,
        min_length=1,
        description="Secret with the access key (private buckets); never the key itself.",
    )
    secretKeyOfAccessKeyId: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the access key id in accessKeySecret.",
        json_schema_extra=system_default("AccessKeyId"),
    )
    secretKeyOfSecretKey: str | None = Field(
        default=None,
        min_length=1,
        description="Key of the secret access key in accessKeySecret.",
        json_schema_extra=system_default("SecretKey"),
    )


class Nfs(SpecModel):
    """An NFS export mounted into the container."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    server: str = Field(min_length=1, description="Host name or IP address of the NFS server.")
    path: str = Field(min_length=1, description="Path exported by the server.")
    mountPath: str = Field(min_length=1, description=_MOUNT_PATH)
    readOnly: bool | None = Field(
        default=None, description="Mount read-only.", json_schema_extra=system_default(True)
    )


class HostPath(SpecModel):
    """A directory of the node mounted into the container."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    path: str = Field(min_length=1, description="Path on the node.")
    mountPath: str = Field(min_length=1, description=_MOUNT_PATH)
    readOnly: bool | None = Field(
        default=None, description="Mount read-only.", json_schema_extra=system_default(True)
    )
    mountPropagation: Literal["None", "HostToContainer"] | None = Field(
        default=None, description="Whether later host mounts below path show in the container."
    )


class ConfigMapVolume(SpecModel):
    """A ConfigMap of the project's namespace mounted as files."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    configMap: str = Field(min_length=1, description="Name of the ConfigMap.")
    mountPath: str = Field(min_length=1, description=_MOUNT_PATH)


class SecretVolume(SpecModel):
    """A Secret of the project's namespace mounted as files."""

    name: str | None = Field(default=None, min_length=1, description=_NAME)
    secret: str = Field(min_length=1, description="Name of the Secret.")
    mountPath: str = Field(min_length=1, description=_MOUNT_PATH)


class DataVolume(SpecModel):
    """A shared data volume mounted into the container."""

    id: str = Field(min_length=1, description="Id of the data volume.")
    mountPath: str = Field(min_length=1, description=_MOUNT_PATH)


class BaseStorage(SpecModel):
    """The volumes every kind accepts (inference supports only these)."""

    dataVolume: list[DataVolume] | None = Field(default=None, description="Data volumes.")
    pvc: list[Pvc] | None = Field(default=None, description="Persistent volume claims.")
    git: list[Git] | None = Field(default=None, description="Git repositories.")
    configMapVolume: list[ConfigMapVolume] | None = Field(
        default=None, description="ConfigMaps mounted as files."
    )
    secretVolume: list[SecretVolume] | None = Field(
        default=None, description="Secrets mounted as files."
    )

    @model_validator(mode="after")
    def _check_unique(self) -> Self:
        problems: list[str] = []
        mount_paths: list[str | None] = []
        for field in type(self).model_fields:
            items = getattr(self, field) or ()
            problems.extend(
                f"{field} has two volumes named {name!r}"
                for name in duplicates(getattr(item, "name", None) for item in items)
            )
            mount_paths.extend(
                getattr(item, "mountPath", None) or getattr(item, "path", None) for item in items
            )
        # Kubernetes refuses a container that mounts two volumes at one path.
        problems.extend(f"{path!r} is mounted twice" for path in duplicates(mount_paths))
        raise_problems(problems)
        return self


class Storage(BaseStorage):
    """Every volume type, for workspace, training and distributed workloads."""

    hostPath: list[HostPath] | None = Field(default=None, description="Node directories.")
    nfs: list[Nfs] | None = Field(default=None, description="NFS exports.")
    s3: list[S3] | None = Field(default=None, description="S3 buckets.")
