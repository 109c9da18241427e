"""Label, annotation and resource names shared by the renderer and the cluster backends.

The KAI names are the open-source scheduler's conventions; the ``berth.dev/`` names are ours.
"""

from __future__ import annotations

SCHEDULER_NAME = "kai-scheduler"

# KAI scheduler conventions.
QUEUE_LABEL = "kai.scheduler/queue"
NODE_POOL_LABEL = "kai.scheduler/node-pool"
GPU_FRACTION_ANNOTATION = "gpu-fraction"
GPU_FRACTION_DEVICES_ANNOTATION = "gpu-fraction-num-devices"
GPU_MEMORY_ANNOTATION = "gpu-memory"
# Set on each pod by KAI's podgrouper, which builds the workload's PodGroup itself.
POD_GROUP_ANNOTATION = "pod-group-name"

# Node label carrying a node's type (Run:ai's ``nodeType`` placement field).
NODE_TYPE_LABEL = "run.ai/type"

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"  # + profile, e.g. nvidia.com/mig-1g.5gb
# KAI reads a workload's priority class from this label on the top object or its pods, and a
# missing PriorityClass object then does not stop the pods from being created.
PRIORITY_CLASS_LABEL = "priorityClassName"

# berth's own identity labels: every object of a workload carries them, so a backend can find
# (and delete) everything that belongs to a workload with one label selector.
WORKLOAD_ID_LABEL = "berth.dev/workload-id"
WORKLOAD_NAME_LABEL = "berth.dev/workload-name"
PROJECT_LABEL = "berth.dev/project"
WORKLOAD_ID_ANNOTATION = "berth.dev/workload-id"
TRACE_ID_ANNOTATION = "berth.dev/trace-id"

# Simulated-cluster behaviour, read from the top object's annotations (users set them through
# the spec's annotations). Ignored by a real cluster.
# Seconds until the main container exits. Default: 10 for training and distributed; workspaces
# and inference run until stopped, and only use it as the time to crash with SIM_FAIL=crash.
SIM_RUNTIME_ANNOTATION = "berth.dev/sim-runtime-seconds"
# "crash": the container exits 1; "image-pull": the image can never be pulled.
SIM_FAIL_ANNOTATION = "berth.dev/sim-fail"
# Seconds to pull the image and start the container once a pod is placed (default 1).
SIM_STARTUP_ANNOTATION = "berth.dev/sim-startup-seconds"

# A workspace tool connection's Service: who may reach it and what serves it.
ACCESS_ANNOTATION = "berth.dev/access"  # everyone | groups | users
AUTHORIZED_USERS_ANNOTATION = "berth.dev/authorized-users"  # comma-separated emails
AUTHORIZED_GROUPS_ANNOTATION = "berth.dev/authorized-groups"  # comma-separated groups
TOOL_TYPE_ANNOTATION = "berth.dev/tool-type"
TOOL_NAME_ANNOTATION = "berth.dev/tool-name"
TOOL_URL_ANNOTATION = "berth.dev/tool-url"

# The spec's related URLs (JSON list of {url, type, name}), on every object of the workload.
RELATED_URLS_ANNOTATION = "berth.dev/related-urls"

# A line the top object carries for the workload's phase message, when the cluster runs the
# workload differently from what was asked (e.g. scale-to-zero without Knative).
PHASE_NOTE_ANNOTATION = "berth.dev/phase-note"

# Knative Serving (serving.knative.dev/v1 Service) autoscaling annotations.
KNATIVE_API_VERSION = "serving.knative.dev/v1"
KNATIVE_CLASS = "autoscaling.knative.dev/class"
KNATIVE_KPA = "kpa.autoscaling.knative.dev"
KNATIVE_HPA = "hpa.autoscaling.knative.dev"
KNATIVE_METRIC = "autoscaling.knative.dev/metric"
KNATIVE_TARGET = "autoscaling.knative.dev/target"
KNATIVE_MIN_SCALE = "autoscaling.knative.dev/min-scale"
KNATIVE_MAX_SCALE = "autoscaling.knative.dev/max-scale"
KNATIVE_RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
