"""The container of a workload: environment variables, probes, tool connections, security."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from berth.contracts.spec.base import (
    DEFAULT_HOST_IPC,
    DEFAULT_HOST_NETWORK,
    DEFAULT_UID_GID_SOURCE,
    CredentialKeyRef,
    SpecModel,
    raise_problems,
    system_default,
)

ImagePullPolicy = Literal["Always", "Never", "IfNotPresent"]
UidGidSource = Literal["fromTheImage", "fromIdpToken", "custom"]
SeccompProfileType = Literal["RuntimeDefault", "Unconfined", "Localhost"]
Capability = Literal[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "SETGID",
    "SETFCAP",
    "SETPCAP",
    "SETUID",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "SYSLOG",
    "WAKE_ALARM",
]

TOOL_TYPES: tuple[str, ...] = (
    "jupyter-notebook",
    "pycharm",
    "visual-studio-code",
    "tensorboard",
    "rstudio",
    "mlflow",
    "custom",
    "matlab",
    "chatbot-ui",
    "wandb",
    "comet",
)
"""Tool types the form offers; toolType stays a free string so new tools need no contract change."""


class EnvironmentVariable(SpecModel):
    """An environment variable: a literal value, or a key of a credential (never its secret)."""

    # Lets a NameValue (the earlier shape of this item) be passed where a variable is expected.
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(min_length=1, description="Name of the variable.")
    value: str | None = Field(default=None, description="Literal value of the variable.")
    credential: CredentialKeyRef | None = Field(
        default=None, description="Take the value from this key of a credential asset instead."
    )
    exclude: bool | None = Field(
        default=None, description="True to exclude a variable that a policy default adds."
    )

    @model_validator(mode="after")
    def _check_source(self) -> Self:
        if self.value is not None and self.credential is not None:
            raise ValueError(f"{self.name}: value and credential are mutually exclusive")
        return self


class HttpGetAction(SpecModel):
    """An HTTP GET request used as a probe."""

    path: str | None = Field(default=None, description="Path to request; / when unset.")
    port: int | None = Field(default=None, ge=1, le=65535, description="Container port to call.")
    host: str | None = Field(default=None, description="Host to call; the pod IP when unset.")
    scheme: Literal["HTTP", "HTTPS"] | None = Field(default=None, description="HTTP when unset.")


class ProbeHandler(SpecModel):
    """The action a probe performs."""

    httpGet: HttpGetAction | None = Field(default=None, description="Probe by HTTP GET.")


class Probe(SpecModel):
    """When and how to probe the container."""

    initialDelaySeconds: int | None = Field(
        default=None, ge=0, description="Seconds after start before the first probe."
    )
    periodSeconds: int | None = Field(default=None, ge=1, description="Seconds between probes.")
    timeoutSeconds: int | None = Field(default=None, ge=1, description="Seconds before timeout.")
    successThreshold: int | None = Field(
        default=None, ge=1, description="Consecutive successes to count as healthy again."
    )
    failureThreshold: int | None = Field(
        default=None, ge=1, description="Consecutive failures before giving up."
    )
    handler: ProbeHandler | None = Field(default=None, description="What the probe does.")


class Probes(SpecModel):
    """Container probes."""

    readiness: Probe | None = Field(
        default=None, description="Decides when the container is ready to accept traffic."
    )


class Port(SpecModel):
    """A container port exposed through a Kubernetes Service."""

    container: int = Field(ge=1, le=65535, description="The container port.")
    serviceType: Literal["LoadBalancer", "NodePort", "ClusterIP"] | None = Field(
        default=None, description="Kind of Service that exposes the port."
    )
    external: int | None = Field(
        default=None, ge=1, le=65535, description="Port on the Service; system-chosen if unset."
    )
    toolType: str | None = Field(
        default=None, description=f"Tool served on this port: one of {', '.join(TOOL_TYPES)}."
    )
    toolName: str | None = Field(default=None, description="Display name of the tool.")
    name: str | None = Field(default=None, min_length=1, description="Unique name of this port.")


class ExposedUrl(SpecModel):
    """A container port reachable by URL; access is everyone, some groups, or some users."""

    container: int = Field(ge=1, le=65535, description="The container port.")
    url: str | None = Field(default=None, description="The URL; generated by the system if unset.")
    authorizedUsers: list[str] | None = Field(
        default=None,
        description="Emails of the users allowed access; excludes authorizedGroups.",
    )
    authorizedGroups: list[str] | None = Field(
        default=None,
        description="Identity-provider groups allowed access; excludes authorizedUsers.",
    )
    toolType: str | None = Field(
        default=None, description=f"Tool served at the URL: one of {', '.join(TOOL_TYPES)}."
    )
    toolName: str | None = Field(default=None, description="Display name of the tool.")
    name: str | None = Field(default=None, min_length=1, description="Unique name of this URL.")

    @model_validator(mode="after")
    def _check_access(self) -> Self:
        if self.authorizedUsers is not None and self.authorizedGroups is not None:
            raise ValueError("authorizedUsers and authorizedGroups are mutually exclusive")
        return self


class RelatedUrl(SpecModel):
    """A link to an external service related to the workload (e.g. its W&B run)."""

    url: str = Field(min_length=1, description="The URL.")
    type: str | None = Field(default=None, description="Kind of service, e.g. wandb.")
    name: str | None = Field(default=None, min_length=1, description="Unique name of this link.")


class BaseSecurity(SpecModel):
    """Security settings every kind of workload accepts (inference included)."""

    uidGidSource: UidGidSource | None = Field(
        default=None,
        description="Where user and group ids come from: the image, the IdP token, or custom.",
        json_schema_extra=system_default(DEFAULT_UID_GID_SOURCE),
    )
    capabilities: list[Capability] | None = Field(
        default=None, description="POSIX capabilities added to the container."
    )
    seccompProfileType: SeccompProfileType | None = Field(
        default=None, description="Seccomp profile applied to the container."
    )
    runAsNonRoot: bool | None = Field(default=None, description="Force a non-root user.")
    readOnlyRootFilesystem: bool | None = Field(
        default=None, description="Mount the container's root filesystem read-only."
    )
    runAsUid: int | None = Field(
        default=None, ge=0, description="User id; not with uidGidSource fromTheImage."
    )
    runAsGid: int | None = Field(
        default=None, ge=0, description="Group id; not with uidGidSource fromTheImage."
    )
    supplementalGroups: str | None = Field(
        default=None,
        pattern=r"^$|^[0-9]+(,[0-9]+)*$",
        description="Comma-separated extra group ids; not with uidGidSource fromTheImage.",
    )

    @model_validator(mode="after")
    def _check_ids(self) -> Self:
        if self.uidGidSource == "fromTheImage":
            raise_problems(
                f"{name} requires uidGidSource 'custom' or 'fromIdpToken'"
                for name in ("runAsUid", "runAsGid", "supplementalGroups")
                if getattr(self, name) is not None
            )
        return self


class Security(BaseSecurity):
    """Security settings of workspace, training and distributed workloads."""

    allowPrivilegeEscalation: bool | None = Field(
        default=None, description="Let processes gain more privileges than their parent."
    )
    hostIpc: bool | None = Field(
        default=None,
        description="Share the host's IPC namespace.",
        json_schema_extra=system_default(DEFAULT_HOST_IPC),
    )
    hostNetwork: bool | None = Field(
        default=None,
        description="Use the host's network namespace.",
        json_schema_extra=system_default(DEFAULT_HOST_NETWORK),
    )
