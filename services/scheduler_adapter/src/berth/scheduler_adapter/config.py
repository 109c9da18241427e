from pathlib import Path

from pydantic import Field

from berth.shared.settings import Settings


class SchedulerAdapterSettings(Settings):
    service_name: str = "scheduler-adapter"
    # The cluster this agent serves: its identity on the bus (durable names, the render
    # subject), so a NATS token.
    cluster_id: str = Field(default="local", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    # The agent reports its cluster at start and then every so often, so cluster-sync sees it is
    # alive and sends down again any desired setting the cluster lost (see cluster-sync).
    report_interval_seconds: float = Field(default=10.0, gt=0)
    # The cluster's API server, real or simulated: kubeconfig file and context (in-cluster
    # service account when both unset and running in a pod; otherwise ~/.kube/config and its
    # current context).
    kubeconfig: Path | None = None
    kube_context: str | None = None
    # Client-side rate limit of API requests: sustained requests per second and burst.
    kube_qps: float = Field(default=20.0, gt=0)
    kube_burst: int = Field(default=30, ge=1)
    # Where the cluster's public config lives (key "config", YAML).
    kube_config_namespace: str = "berth"
    kube_config_map: str = "berth-public"
    # Seconds between full re-lists of the watched objects.
    kube_resync_seconds: float = Field(default=300.0, gt=0)
    # Its key pair (agent-<cluster id>.<key id>.key): the catalog seals credential values to
    # it; created, mode 0600, when missing.
    keys_dir: Path = Path(".berth/keys")
    # How long to wait for the catalog to deliver credentials before applying without them
    # (they are then delivered in the background).
    catalog_timeout_seconds: float = Field(default=2.0, gt=0)
    # Replicas of one cluster's agent: only the holder of the Lease berth-agent-<cluster id>
    # (in kube_config_namespace) applies, watches and reports; the others stand by and take
    # over once it has not been renewed for lease_duration_seconds (at once when the holder
    # stops cleanly). The holder gives the lease up after lease_renew_deadline_seconds without
    # a successful renewal; every lease_retry_seconds a replica tries to take or renew it.
    # Kubernetes' own controllers' timing (15/10/2): tighter leases made a busy agent (an API
    # server slow to answer, a long batch) give its lease up and restart, then resync every
    # workload it holds, several times an hour under a heavy load.
    leader_election: bool = True
    lease_duration_seconds: int = Field(default=15, ge=2)
    lease_renew_deadline_seconds: float = Field(default=10.0, gt=0)
    lease_retry_seconds: float = Field(default=2.0, gt=0)
    # This replica's name as the lease's holder, kept across restarts of the same replica (its
    # pod's name; `berth up` names each agent process): restarted after a crash, it takes the
    # lease it held back at once instead of waiting it out. It must differ between replicas
    # alive at once: a holder that finds its lease renewed under its name by another process
    # steps down. Unset: a new name per process, which waits out the lease of the one before.
    lease_identity: str | None = Field(default=None, max_length=253)
