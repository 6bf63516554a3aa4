"""cluster.yaml is a valid `ray up` config (Ray's own schema and validator, offline) with the intended shape."""

from __future__ import annotations

import copy
import json
import os

import jsonschema
import pytest
import ray
import yaml

from .conftest import REPO

CLUSTER = yaml.safe_load((REPO / "cluster.yaml").read_text())


def schema() -> dict:
    import ray.autoscaler

    with open(os.path.join(os.path.dirname(ray.autoscaler.__file__), "ray-schema.json")) as f:
        return json.load(f)


def test_cluster_yaml_passes_rays_schema_and_validator():
    jsonschema.validate(CLUSTER, schema())
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(CLUSTER))  # merges Ray's AWS defaults, as `ray up` does
    validate_config(prepared)
    assert prepared["available_node_types"]["gpu_worker"]["max_workers"] == 8


def test_the_schema_check_is_not_vacuous():
    broken = copy.deepcopy(CLUSTER)
    broken["available_node_types"]["gpu_worker"]["resources"] = {"GPU": 0.5}  # resources must be integers
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())
    del broken["available_node_types"]["gpu_worker"]["node_config"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())


def test_cluster_shape_cpu_head_spot_gpu_workers_pinned_image():
    nodes = CLUSTER["available_node_types"]
    head = nodes[CLUSTER["head_node_type"]]
    assert head["resources"] == {"CPU": 0}  # trials never land on the head
    worker = nodes["gpu_worker"]
    assert worker["min_workers"] == 0 and worker["node_config"]["InstanceType"] == "g5.xlarge"
    assert worker["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    for node in (head, worker):
        assert node["node_config"]["ImageId"].startswith("ami-")
        assert node["node_config"]["IamInstanceProfile"]["Arn"].startswith("arn:aws:iam::")
    assert CLUSTER["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"  # same Ray as ours
    assert "ray-ml" not in yaml.safe_dump(CLUSTER)
    assert CLUSTER["file_mounts"] == {"/home/ray/vaeray": ".", "/home/ray/.ray/auth_token": "~/.ray/auth_token"}
    assert any("pip install" in c and "-e /home/ray/vaeray" in c for c in CLUSTER["setup_commands"])
    assert CLUSTER["provider"]["type"] == "aws" and CLUSTER["provider"]["cache_stopped_nodes"] is False


def test_own_security_group_opens_ssh_only_from_one_cidr():
    import ipaddress

    group = CLUSTER["provider"]["security_group"]
    rules = group["IpPermissions"]
    assert group["GroupName"] and len(rules) == 1
    (rule,) = rules
    assert rule["IpProtocol"] == "tcp" and rule["FromPort"] == rule["ToPort"] == 22
    for r in rule["IpRanges"]:
        net = ipaddress.ip_network(r["CidrIp"])
        assert net.prefixlen >= 16, f"SSH open to {net}: too wide"  # never 0.0.0.0/0


def test_token_authentication_on_every_node():
    """Ray's token authentication (RAY_AUTH_MODE=token, Ray >= 2.5x) on the head and on every worker, with
    the laptop's token file copied to the path `ray start` reads (~ of the image's `ray` user)."""
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in CLUSTER[key] if "ray start" in c]
        assert len(start) == 1 and "RAY_AUTH_MODE=token ray start" in start[0], key
    assert CLUSTER["file_mounts"]["/home/ray/.ray/auth_token"] == "~/.ray/auth_token"
    head = next(c for c in CLUSTER["head_start_ray_commands"] if "ray start" in c)
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head and "--dashboard-host=127.0.0.1" in head
    from ray._private.authentication.authentication_token_setup import _get_default_token_path

    assert str(_get_default_token_path()).endswith("/.ray/auth_token")  # where `ray start` looks by default
