"""A Ray autoscaling cluster on one machine, started and stopped without touching anyone else's Ray.

Ray's fake multi-node provider (``ray.autoscaler._private.fake_multi_node``) launches each worker node the
autoscaler asks for as local processes (a raylet with its agents) with the logical resources of its node type.
``ray.cluster_utils.AutoscalingCluster`` wraps it, but it runs ``ray stop --force`` (which kills *every* Ray
on the machine, other people's included), uses the fixed default ports, and reads the provider's
``example.yaml``, which the Ray 2.60 wheel does not ship. So this starts the head itself:

* ``RAY_FAKE_CLUSTER=1 ray start --head --block`` in a new session, with its own ``--temp-dir`` and free ports
  for every listening service, and an autoscaling config whose provider is the fake one loaded as an
  ``external`` provider (that path needs no defaults file) with the head's GCS address (the provider
  otherwise assumes port 6379);
* stopping kills exactly the processes of that session (head, autoscaler, the worker nodes it launched,
  their workers, jobs), which is also how a test simulates a preempted node: SIGKILL of one node's raylet.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROVIDER = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
RAY = Path(sys.executable).parent / "ray"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def session_pids(sid: int) -> set[int]:
    """Every process whose session id is ``sid`` (field 6 of /proc/PID/stat)."""
    pids = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid:
                    pids.add(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return pids


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


class FakeAutoscalingCluster:
    """``with FakeAutoscalingCluster(worker_types, env=...) as c:`` a head (no resources by default) whose
    autoscaler adds nodes of ``worker_types`` (the ``available_node_types`` entries of a cluster.yaml) for
    waiting tasks; ``c.gcs_address``, ``c.worker_nodes()``, ``c.kill_node(node_id)``."""

    def __init__(self, worker_types: dict[str, Any], *, head_resources: dict[str, float] | None = None,
                 env: dict[str, str] | None = None, idle_timeout_minutes: float = 5,
                 system_config: dict[str, Any] | None = None, dashboard: bool = False):  # fmt: skip
        self.worker_types = worker_types
        self.head_resources = head_resources or {}
        self.env = env or {}
        self.idle_timeout_minutes = idle_timeout_minutes
        self.system_config = system_config
        self.dashboard = dashboard  # the job server (`ray job submit`) lives in the dashboard: ray[default]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> FakeAutoscalingCluster:
        # short: Ray's socket paths under it must stay below 108 bytes
        self.temp_dir = tempfile.mkdtemp(prefix="vfa", dir="/tmp")
        gcs, agent_http, agent_grpc, metrics, runtime_env, dash = free_ports(6)
        self.gcs_address = f"127.0.0.1:{gcs}"
        self.dashboard_address = f"http://127.0.0.1:{dash}" if self.dashboard else None
        config = {
            "cluster_name": "vaeray-fake",
            "max_workers": sum(t.get("max_workers", 1) for t in self.worker_types.values()),
            "upscaling_speed": 1.0,
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "provider": {"type": "external", "module": PROVIDER, "gcs_address": self.gcs_address,
                         # several nodes share one IP here; a fake node needs no SSH setup
                         "use_node_id_as_ip": True, "disable_node_updaters": True, "disable_launch_config_check": True},
            "auth": {"ssh_user": "ray"},
            "available_node_types": {
                "ray.head.default": {"resources": self.head_resources, "node_config": {}, "max_workers": 0},
                **self.worker_types,
            },
            "head_node_type": "ray.head.default",
            "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
            "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
            "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
        }  # fmt: skip
        config_path = Path(self.temp_dir) / "autoscaling.json"
        config_path.write_text(json.dumps(config))
        head = self.head_resources
        cmd = [
            str(RAY), "start", "--head", "--block", f"--autoscaling-config={config_path}",
            f"--temp-dir={self.temp_dir}", f"--port={gcs}",
            *([f"--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}"]
              if self.dashboard else ["--include-dashboard=false"]),
            f"--dashboard-agent-listen-port={agent_http}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={runtime_env}", f"--num-cpus={head.get('CPU', 0)}",
            f"--num-gpus={head.get('GPU', 0)}", "--disable-usage-stats",
        ]  # fmt: skip
        if self.system_config:  # the head passes it to every node (the fake workers included)
            cmd.append("--system-config=" + json.dumps(self.system_config, separators=(",", ":")))
        env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
               "RAY_USAGE_STATS_ENABLED": "0", **self.env}  # fmt: skip
        env.pop("RAY_ADDRESS", None)
        self.log = open(Path(self.temp_dir) / "ray_start.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_up(90)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_up(self, timeout: float) -> None:
        """Until the head's raylet runs and the autoscaler process exists (``ray start --block`` prints
        nothing machine-readable, so the processes of its session are watched)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited {self.proc.returncode}: {self.start_log()[-3000:]}")
            names = [" ".join(cmdline(p)) for p in self.pids()]
            if any("monitor.py" in n for n in names) and self.raylets() and "--block" in self.start_log() + "Ray runtime started":
                if not self.dashboard or self._dashboard_answers():
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the fake cluster's head did not start within {timeout} s: {self.start_log()[-3000:]}")

    def _dashboard_answers(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"{self.dashboard_address}/api/version", timeout=2).close()
            return True
        except urllib.error.HTTPError:  # it answers (401 without the token): up
            return True
        except OSError:
            return False

    def start_log(self) -> str:
        return (Path(self.temp_dir) / "ray_start.log").read_text(errors="replace")

    def pids(self) -> set[int]:
        return session_pids(self.proc.pid) if self.proc else set()

    def raylets(self) -> dict[str, int]:
        """node id -> pid of every live raylet of this cluster (the head's included)."""
        out = {}
        for pid in self.pids():
            args = cmdline(pid)
            if args and args[0].endswith("raylet"):
                node = next((a.split("=", 1)[1] for a in args if a.startswith("--node_id=")), None)
                out[node or str(pid)] = pid
        return out

    def worker_nodes(self) -> dict[str, int]:
        """The raylets of worker nodes (the fake provider's node ids end in 00001, 00002, ...)."""
        return {n: p for n, p in self.raylets().items() if not n.endswith("00000")}

    def kill_node(self, node_id: str) -> None:
        """A preemption without notice: SIGKILL of the node's raylet and every process under it (its
        workers, the trial running there, its agents) at once, as when the machine goes away."""
        raylet = self.raylets()[node_id]
        parents = {}
        for pid in self.pids():
            try:
                parents[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
        doomed, grew = {raylet}, True
        while grew:
            more = {p for p, pp in parents.items() if pp in doomed} - doomed
            doomed |= more
            grew = bool(more)
        for pid in doomed:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def autoscaler_log(self) -> str:
        logs = Path(self.temp_dir).glob("session_*/logs/monitor.*")
        return "".join(p.read_text(errors="replace") for p in logs if p.is_file())

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            for _ in range(3):  # processes may fork while we kill: repeat until the session is empty
                pids = self.pids()
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.3)
            self.proc.wait(timeout=10)
            self.proc = None
        if getattr(self, "log", None):
            self.log.close()
        if os.environ.get("VAERAY_KEEP_FAKE_CLUSTER"):
            print(f"fake cluster temp dir kept: {self.temp_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def node_ids_in(text: str) -> set[str]:
    return set(re.findall(r"f{51}\d{5}", text))
