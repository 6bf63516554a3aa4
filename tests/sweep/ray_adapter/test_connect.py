"""``--address`` of something that is not a Ray GCS is refused in one line within the connect timeout, not
after ray.init's minutes of retries (the token case is tested against a real cluster in test_autoscaling.py)."""

from __future__ import annotations

import socket
import time

import pytest

from vaeray.errors import ConfigError
from vaeray.sweep.ray.local import check_gcs


def test_a_port_that_is_not_a_gcs_is_refused_within_the_timeout(capfd):
    with socket.socket() as server:  # accepts connections, never answers: a port open to something else
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = "127.0.0.1:%d" % server.getsockname()[1]
        t = time.monotonic()
        with pytest.raises(ConfigError, match="no Ray cluster answered at 127.0.0.1:.* within 2 s"):
            check_gcs(address, timeout=2)
        assert time.monotonic() - t < 6
    assert "gcs_client" not in capfd.readouterr().err  # Ray's C++ warning lines were silenced


@pytest.mark.parametrize("address", ["auto", "local", "ray://127.0.0.1:1", "http://127.0.0.1:1"])
def test_addresses_ray_resolves_itself_are_not_probed(address):
    t = time.monotonic()
    check_gcs(address, timeout=2)  # no error, no wait
    assert time.monotonic() - t < 1
