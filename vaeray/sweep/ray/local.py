"""Starting and reaching Ray: a local Ray with only what a local sweep needs (trial workers at normal
priority, bound to the loopback interface), a cluster's address checked before ``ray.init`` waits on it, and
a cluster's per-node resources for the dry run.

Ray starts its worker processes at nice 15 (``worker_niceness``), so on a laptop shared with anything else a
sweep's trials ran at a third of ``vaeray train``'s speed; vaeray starts them at ``VAERAY_WORKER_NICENESS``
(default 0, normal priority; 15 restores Ray's default). Everything else is Ray's default: turning off the
prestarted workers (one idle Python worker per CPU) made a one-trial sweep's fixed cost ~12 s *longer* on the
2-core machine, since the trial then waits for a cold worker (docs/benchmarks.md).
``VAERAY_RAY_DEFAULTS=1`` starts Ray with its own defaults, niceness included (benchmarks/bench_ray.py
compares both). A cluster started with ``ray start`` keeps its own settings: start it with
``RAY_worker_niceness=0 ray start ...`` (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import ray

from ...errors import ConfigError, clip
from ..dryrun import ClusterView

NICENESS_ENV = "VAERAY_WORKER_NICENESS"


def local_init_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``ray.init(address="local", ...)`` beyond the dashboard and log settings."""
    if os.environ.get("VAERAY_RAY_DEFAULTS"):
        return {}
    niceness = int(os.environ.get(NICENESS_ENV, "0"))
    return {"_system_config": {"worker_niceness": niceness}}


class RayRuntime:
    """Starts Ray only when a sweep has something to run; shuts down only what it started."""

    def __init__(self, address: str | None):
        self.address = address or os.environ.get("RAY_ADDRESS")
        self.started = False
        self._undo_loopback: Callable[[], None] = lambda: None  # set while a local Ray of ours runs

    def ensure(self) -> None:
        if ray.is_initialized():
            return
        if self.address:
            check_reachable(self.address)
            check_gcs(self.address)
            try:
                ray.init(address=self.address, log_to_driver=False)
            except (ConnectionError, TimeoutError) as e:
                raise ConfigError(f"cannot connect to the Ray cluster at {self.address}: {_first_line(e)}", "--address") from None
        else:  # "local" ignores a stale /tmp/ray/ray_current_cluster left by a killed `ray start`
            # Bound to the loopback interface: a laptop sweep opens no port to the network it is on.
            token_notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
            token_notice.addFilter(_no_token_notice)
            self._undo_loopback = loopback_only()
            try:
                ray.init(address="local", include_dashboard=False, log_to_driver=False, _node_ip_address=LOOPBACK,
                         **local_init_kwargs())
            except BaseException:
                self._undo_loopback()
                raise
            finally:
                token_notice.removeFilter(_no_token_notice)
        self.started = True

    def close(self) -> None:
        if self.started and ray.is_initialized():
            ray.shutdown()
        self._undo_loopback()
        self._undo_loopback = lambda: None


SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_only() -> Callable[[], None]:
    """Put Ray in its single-machine mode for the local Ray about to start; return the undo.

    ``ray.init(_node_ip_address="127.0.0.1")`` alone does not bind anything to loopback in Ray 2.60: ``ray.init``
    replaces a loopback address by the machine's routable one (``services.resolve_ip_for_localhost``), so the
    GCS, the raylet and every worker were started with that address and listened on all interfaces. Ray has a
    single-machine mode, the default on macOS and Windows (``ray_constants.ENABLE_RAY_CLUSTER``, environment
    variable ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``): the node address is then 127.0.0.1 and every Ray process
    listens on loopback only (tests/sweep/ray_adapter/test_security.py, with ``ss``). The driver reads the
    constant, already imported; Ray's processes read the variable, which they inherit. Both go back as they were
    when the local Ray is shut down, so a later ``ray.init`` of a cluster in the same process is unaffected.
    """
    from ray._private import ray_constants

    before_env, before_flag = os.environ.get(SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False

    def undo() -> None:
        ray_constants.ENABLE_RAY_CLUSTER = before_flag
        if before_env is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = before_env

    return undo


def _no_token_notice(record: logging.LogRecord) -> bool:
    """Drop Ray's "Token authentication is enabled for this Ray cluster" warning, printed by every local start
    (and so by every resumed sweep): token authentication is what vaeray wants for a local Ray
    (docs/reliability.md), not something to warn about. Its opposite, "... is disabled", still shows."""
    return not record.getMessage().startswith("Token authentication is enabled")


LOOPBACK = "127.0.0.1"
CONNECT_TIMEOUT_S = float(os.environ.get("VAERAY_CONNECT_TIMEOUT", "10"))


def _first_line(e: BaseException) -> str:
    return clip(str(e) or type(e).__name__, 300)


def check_reachable(address: str, timeout: float | None = None) -> None:
    """Refuse an ``--address`` nobody answers at, within ``timeout`` seconds (``VAERAY_CONNECT_TIMEOUT``,
    default 10), instead of letting ``ray.init`` retry for minutes. ``auto`` is left to Ray (it reads the
    local cluster file and fails at once when there is none)."""
    import socket

    if address in ("auto", "local"):
        return
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep:
        host, port = rest.rstrip("/"), ("10001" if address.startswith("ray://") else "6379")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"'{address}' is not a Ray address (HOST:PORT, ray://HOST:PORT or auto)", "--address")
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({why} after at most {timeout:g} s); "
            "is `ray start --head` running there, and is the port open to this machine?",
            "--address",
        ) from None


def check_gcs(address: str, timeout: float | None = None) -> None:
    """Ask the GCS at a ``HOST:PORT`` address for its cluster id once, before ``ray.init`` does.

    ``ray.init`` retries the same request about 20 times a second apart, whatever the error, and Ray's core
    prints a warning line on stderr at each: a cluster with token authentication that refuses this client's
    token (none, or another cluster's) took ~23 s and ~20 lines to end in "Failed to connect to Ray cluster",
    which does not say why; a port where something other than a GCS listens took minutes. One request here
    (its own warning line silenced) refuses both in one line: at once for the token, after at most
    ``timeout`` seconds (``VAERAY_CONNECT_TIMEOUT``) otherwise. Other failures are left to ``ray.init``.
    """
    import threading

    if address in ("auto", "local") or "://" in address:
        return
    from ray._raylet import GcsClient  # Ray's own client (no public API asks a GCS without joining it)
    from ray.exceptions import AuthenticationError

    outcome: dict[str, BaseException | bool] = {}

    def ask() -> None:
        try:
            GcsClient(address=address).cluster_id
            outcome["ok"] = True
        except BaseException as e:  # noqa: BLE001  (reported below, or left to ray.init)
            outcome["error"] = e

    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    with _stderr_silenced():
        asking = threading.Thread(target=ask, daemon=True)  # a hung request must not hang the sweep
        asking.start()
        asking.join(timeout)
    error = outcome.get("error")
    if isinstance(error, AuthenticationError):
        raise ConfigError(
            f"the Ray cluster at {address} refused this client's token (Ray token authentication): export "
            "RAY_AUTH_MODE=token and give the cluster's token as RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token",
            "--address",
        )  # fmt: skip
    if not outcome:
        raise ConfigError(
            f"no Ray cluster answered at {address} within {timeout:g} s: a port is open there, but it is not a "
            "Ray GCS (use the head's GCS port, 6379 by default), or the head is overloaded (raise VAERAY_CONNECT_TIMEOUT)",
            "--address",
        )  # fmt: skip


class _stderr_silenced:
    """File descriptor 2 to /dev/null for a moment: Ray's C++ core writes its warnings there directly."""

    def __enter__(self):
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc: Any) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


def cluster_view(address: str | None) -> ClusterView:
    """Per-node CPU/GPU of the Ray cluster at ``address`` (connects, reads, disconnects)."""
    r = RayRuntime(address)
    r.ensure()
    try:
        nodes = tuple(
            (float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0))) for n in ray.nodes() if n.get("Alive")
        )
    finally:
        r.close()
    return ClusterView(f"Ray cluster at {r.address or 'local'}", nodes)
