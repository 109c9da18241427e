"""Compute resources of a workload (Run:ai ``ComputeFields``)."""

from __future__ import annotations

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from berth.contracts.quantity import Quantity, quantity_to_decimal
from berth.contracts.spec.base import SpecModel, duplicates, raise_problems

GpuRequestType = Literal["portion", "memory", "migProfile"]
MigProfile = Literal[
    "1g.5gb",
    "1g.10gb",
    "2g.10gb",
    "2g.20gb",
    "3g.20gb",
    "3g.40gb",
    "4g.20gb",
    "4g.40gb",
    "7g.40gb",
    "7g.80gb",
]

# Fields that ask for a share of one GPU, by the gpuRequestType they belong to.
_FRACTION_FIELDS: dict[str, tuple[str, ...]] = {
    "portion": ("gpuPortionRequest", "gpuPortionLimit"),
    "memory": ("gpuMemoryRequest", "gpuMemoryLimit"),
    "migProfile": ("migProfile",),
}
_FRACTIONAL = ("gpuRequestType", *(name for names in _FRACTION_FIELDS.values() for name in names))


ACCELERATOR_RESOURCES = re.compile(
    r"nvidia\.com/(gpu(\..+)?|mig-.+)|amd\.com/gpu|gpu\.intel\.com/.+|habana\.ai/.+"
    r"|aws\.amazon\.com/neuron.*|google\.com/tpu|xilinx\.com/.+"
)
"""Device-plugin resources of GPUs and other accelerators. GPUs are asked for with the GPU fields,
which policies limit and quotas count; as an extended resource they would bypass both."""


class ExtendedResource(SpecModel):
    """A quantity of a Kubernetes extended resource (e.g. a NIC or an FPGA)."""

    resource: str = Field(
        min_length=1,
        description="Extended resource name, e.g. hardware-vendor.example/foo. Not a GPU or other "
        "accelerator (nvidia.com/gpu, nvidia.com/mig-*, amd.com/gpu...): those are asked for "
        "with gpuDevicesRequest, which policies limit and quotas count.",
    )
    quantity: Quantity | None = Field(default=None, description="Requested quantity, e.g. 2.")
    exclude: bool | None = Field(
        default=None, description="True to exclude a resource that a policy default adds."
    )

    @field_validator("resource")
    @classmethod
    def _not_an_accelerator(cls, resource: str) -> str:
        if ACCELERATOR_RESOURCES.fullmatch(resource.strip().lower()):
            raise ValueError(
                f"{resource} is a GPU or accelerator resource: ask for GPUs with "
                "gpuDevicesRequest (and gpuPortionRequest, gpuMemoryRequest or migProfile), "
                "which policies limit and quotas count"
            )
        return resource


class Compute(SpecModel):
    """GPU, CPU and memory requested per pod (per worker for distributed workloads)."""

    gpuDevicesRequest: int | None = Field(
        default=None, ge=0, description="Number of whole GPU devices requested."
    )
    gpuRequestType: GpuRequestType | None = Field(
        default=None,
        description="Unit of a fractional GPU request; only with gpuDevicesRequest == 1.",
    )
    gpuPortionRequest: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Portion of the GPU to allocate (0..1); only with gpuDevicesRequest == 1.",
    )
    gpuPortionLimit: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Portion of the GPU the workload may burst to; at least gpuPortionRequest.",
    )
    gpuMemoryRequest: Quantity | None = Field(
        default=None, description="GPU memory to allocate, e.g. 10G; only with gpuDevicesRequest 1."
    )
    gpuMemoryLimit: Quantity | None = Field(
        default=None, description="GPU memory the workload may use; at least gpuMemoryRequest."
    )
    migProfile: MigProfile | None = Field(
        default=None,
        description="MIG profile (deprecated by Run:ai); only with gpuRequestType migProfile.",
        json_schema_extra={"deprecated": True},
    )
    cpuCoreRequest: float | None = Field(
        default=None, gt=0, description="CPU cores guaranteed to the workload (0.5, 1, ...)."
    )
    cpuCoreLimit: float | None = Field(
        default=None, gt=0, description="CPU cores the workload may use; at least cpuCoreRequest."
    )
    cpuMemoryRequest: Quantity | None = Field(
        default=None, description="CPU memory guaranteed to the workload, e.g. 8G."
    )
    cpuMemoryLimit: Quantity | None = Field(
        default=None, description="CPU memory the workload may use; at least cpuMemoryRequest."
    )
    largeShmRequest: bool | None = Field(
        default=None, description="Mount a large /dev/shm (RAM-backed) into the container."
    )
    extendedResources: list[ExtendedResource] | None = Field(
        default=None, description="Extended resources and their quantities."
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        raise_problems(self._problems())
        return self

    def _problems(self) -> list[str]:
        values = self.__dict__
        # Runs on every validation of every spec: most ask for whole GPUs, CPU and memory only,
        # where none of the fractional GPU rules can fail.
        if any(values[name] is not None for name in _FRACTIONAL):
            problems = self._fraction_problems()
        else:
            problems = []
        problems.extend(self._limit_problems())
        if self.extendedResources is not None and len(self.extendedResources) > 1:
            problems.extend(
                f"extendedResources lists {name!r} twice"
                for name in duplicates(r.resource for r in self.extendedResources)
            )
        return problems

    def _fraction_problems(self) -> list[str]:
        problems: list[str] = []
        requested = {
            group: [name for name in names if getattr(self, name) is not None]
            for group, names in _FRACTION_FIELDS.items()
        }
        fractional = [name for names in requested.values() for name in names]
        if self.gpuRequestType is not None:
            fractional.insert(0, "gpuRequestType")
        # An unset gpuDevicesRequest may still be filled with 1 by a policy default.
        if self.gpuDevicesRequest not in (None, 1):
            problems.extend(
                f"{name} requires gpuDevicesRequest == 1 (got {self.gpuDevicesRequest})"
                for name in fractional
            )
        if self.gpuRequestType is not None:
            problems.extend(
                f"{name} is not allowed with gpuRequestType {self.gpuRequestType!r}"
                for group, names in requested.items()
                if group != self.gpuRequestType
                for name in names
            )
        else:
            groups = [names[0] for names in requested.values() if names]
            if len(groups) > 1:
                problems.append(f"{' and '.join(groups)} are mutually exclusive")
        return problems

    def _limit_problems(self) -> list[str]:
        problems: list[str] = []
        if (
            self.gpuPortionLimit is not None
            and self.gpuPortionRequest is not None
            and self.gpuPortionLimit < self.gpuPortionRequest
        ):
            problems.append("gpuPortionLimit must be >= gpuPortionRequest")
        if (
            self.cpuCoreLimit is not None
            and self.cpuCoreRequest is not None
            and self.cpuCoreLimit < self.cpuCoreRequest
        ):
            problems.append("cpuCoreLimit must be >= cpuCoreRequest")
        for limit, request in (
            ("gpuMemoryLimit", "gpuMemoryRequest"),
            ("cpuMemoryLimit", "cpuMemoryRequest"),
        ):
            limit_value, request_value = getattr(self, limit), getattr(self, request)
            if (
                limit_value is not None
                and request_value is not None
                and quantity_to_decimal(limit_value) < quantity_to_decimal(request_value)
            ):
                problems.append(f"{limit} must be >= {request}")
        return problems
