"""Several nodes in one process: an office hosting its municipalities.

Each node config keeps everything of its own: identity, listening port, certificate,
signing key, state directory (ledger, audit log, answer cache), chain-head mirror,
policy and budget. Each is served by its own `NodeService` behind its own gRPC server
(from the production factory), so one node's refusal, budget or audit chain never
touches another's. Configs that would share a file, a port or an identity are refused
before anything starts.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from node.config import NodeConfig, load_config
from node.metrics import MetricsServer, NodeMetrics, metrics_address, serve_metrics
from node.server import NodeServer, build_server, worker_pool
from node.service import NodeService

__all__ = [
    "DEFAULT_WORKERS",
    "SINGLE_NODE_WORKERS",
    "HostedNode",
    "call_limit",
    "check_isolated",
    "config_paths",
    "host_all",
    "load_all",
    "stop_all",
]


@dataclass
class HostedNode:
    """One node of the process: its service, its running server and metrics endpoint."""

    service: NodeService
    server: NodeServer
    metrics: MetricsServer | None = None

    @property
    def metrics_host(self) -> str:
        """The address the metrics endpoint listens on (without its port)."""
        listen = self.config.metrics_listen
        return metrics_address(listen).rsplit(":", 1)[0] if listen else ""

    @property
    def metrics_port(self) -> int | None:
        """The metrics endpoint's port (None when it is off)."""
        return self.metrics.port if self.metrics is not None else None

    @property
    def config(self) -> NodeConfig:
        """The node's own config."""
        return self.service.config


def config_paths(given: Iterable[str | Path]) -> list[Path]:
    """The config files named: files as given, directories as their ``*.toml`` (sorted).

    Raises:
        ConfigError: A path that does not exist, a directory with no ``*.toml``, or
            the same file named twice.
    """
    paths: list[Path] = []
    for item in given:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.toml"))
            if not found:
                raise ConfigError(
                    f"{path}: no *.toml node configs in this directory", field="--config"
                )
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise ConfigError(f"{path}: no such config file or directory", field="--config")
    seen: set[Path] = set()
    for path in paths:
        if path.resolve() in seen:
            raise ConfigError(f"{path}: named twice", field="--config",
                              hint="name each node config once")  # fmt: skip
        seen.add(path.resolve())
    return paths


def load_all(paths: list[Path]) -> list[NodeConfig]:
    """Load every config (each strictly, as `fedstats node serve` does) and check isolation."""
    configs = [load_config(path) for path in paths]
    check_isolated(configs)
    return configs


def check_isolated(configs: list[NodeConfig]) -> None:
    """Refuse configs that would share an identity, a port or any file they write.

    Raises:
        ConfigError: Naming both configs and the shared item.
    """
    owners: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for config in configs:
        owners[("[node] id", config.id)].append(config.file)
        owners[("[node] state_dir", str(config.state_dir.resolve()))].append(config.file)
        if config.chain_head is not None:
            owners[("[node] chain_head", str(config.chain_head.resolve()))].append(config.file)
        metrics = metrics_address(config.metrics_listen) if config.metrics_listen else None
        for listen in (config.listen, config.health_listen, metrics):
            if listen and not listen.endswith(":0"):
                owners[("[node] listen", listen)].append(config.file)
        if config.signing_key is not None:
            owners[("[signing] key", str(config.signing_key.resolve()))].append(config.file)
    for (key, value), files in owners.items():
        if len(files) > 1:
            raise ConfigError(
                f"{', '.join(map(str, files))}: {key} {value!r} is shared: nodes served by one "
                "process keep their identity, ports, keys and state apart",
                field=key.split()[-1],
                hint="give each node config its own value",
            )


DEFAULT_WORKERS = 2
"""Threads answering the calls of a process hosting several nodes (unless ``--workers``).

Measured at 300 hosted nodes on 2 cores (`bench/node_host_bench.py`, host CPU per node
and query): 16 threads 21.5 ms, 4 threads 14.6 ms, 2 threads 11.0 ms, 1 thread 11.9 ms
and a slower round. More threads than cores only take turns at the interpreter lock;
two keep both cores busy while OpenDP's sampler (which releases the lock) runs.
"""

SINGLE_NODE_WORKERS = 8
"""Threads of a process serving one node: as before hosting, its calls may wait on a
database engine rather than compete for the interpreter lock."""


def call_limit(workers: int, nodes: int) -> int:
    """How many calls one node may run at once on a pool of ``workers`` shared by ``nodes``.

    At most 8, and with several nodes one fewer than the workers, so that a node whose
    calls hang (an engine that does not answer) never holds every worker: the others
    keep answering on the rest.
    """
    return max(1, min(8, workers - 1 if nodes > 1 else workers))


def host_all(
    configs: list[NodeConfig], *, insecure: bool = False, workers: int | None = None
) -> list[HostedNode]:
    """Start one server per config; if any fails to start, those started are stopped.

    Args:
        configs: Node configs, already checked by `check_isolated`.
        insecure: Serve plaintext (loopback only) instead of each node's mutual TLS.
        workers: Threads answering calls, shared by the nodes (None: `DEFAULT_WORKERS`
            for several nodes, `SINGLE_NODE_WORKERS` for one).

    Each node gets the factory's own server, and their calls run on one worker pool of
    the process (threads started on demand), each node's at most `call_limit` at once
    (more wait their turn). A pool per node would mean hundreds of threads taking turns
    at the interpreter lock: at 300 nodes that tripled the host's CPU per query
    (`bench/node_host_bench.py`). With few workers, a node whose calls hang holds
    ``workers - 1`` of them and every other node of the process answers on the one left,
    one call at a time; two such nodes hold every worker until their calls end.

    Raises:
        ConfigError: A config without [tls] (unless insecure), or one that cannot start.
    """
    hosted: list[HostedNode] = []
    if workers is None:
        workers = DEFAULT_WORKERS if len(configs) > 1 else SINGLE_NODE_WORKERS
    pool = worker_pool(workers)
    limit = call_limit(workers, len(configs))
    try:
        for config in configs:
            if config.tls is None and not insecure:
                raise ConfigError(
                    f"{config.file}: no [tls] section: a node serves mutual TLS",
                    field="tls",
                    hint="add [tls] ca/cert/key (`fedstats certs issue --node ID`), or pass "
                    "--insecure to serve plaintext on a loopback address",
                )
            service = NodeService(config)
            metrics = NodeMetrics(service) if config.metrics_listen else None
            server = build_server(
                service,
                config.listen,
                tls=None if insecure else config.tls,
                health_address=config.health_listen,
                interceptors=(metrics,) if metrics else (),
                max_workers=limit,
                workers=pool,
            )
            hosted.append(HostedNode(service, server))
            if metrics is not None and config.metrics_listen:
                hosted[-1].metrics = serve_metrics(metrics, config.metrics_listen)
            gc.collect(1)  # the young garbage first (cheap): what is frozen is never collected
            gc.freeze()  # kept while it serves: the next node's load (which collects, see
            # `MemoryEngine.load`) walks only its own objects, not every node's before it
    except BaseException:
        stop_all(hosted, grace=None)
        raise
    return hosted


def stop_all(hosted: list[HostedNode], grace: float | None = 5) -> int:
    """Stop every hosted node's server together; the number of calls still running after.

    Every health service reports NOT_SERVING and every server refuses new calls at once;
    calls in flight then have ``grace`` seconds (None: none) to finish. What `host_all`
    froze is unfrozen: ``gc.freeze`` and ``gc.unfreeze`` act on the whole process, so a
    program that hosts nodes in-process and freezes objects of its own shares them.
    """
    events = [event for node in hosted for event in node.server.begin_stop(grace)]
    for event in events:
        event.wait()
    for node in hosted:
        if node.metrics is not None:
            node.metrics.stop()
    gc.unfreeze()  # what `host_all` froze can be collected again once the nodes are gone
    return sum(node.server.calls_running for node in hosted)
