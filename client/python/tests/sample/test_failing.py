"""Run only when SAMPLE_FAIL is set: a test that fails, and one that waits
to be killed, so the run's checks can see their leases end anyway."""

import os
import time

import pytest

pytestmark = pytest.mark.skipif("SAMPLE_FAIL" not in os.environ,
                                reason="only for the failure runs")


def test_fails_holding_a_port(portd_port):
    with open(os.path.join(os.environ["SAMPLE_OUT"], "failing.port"),
              "w") as f:
        f.write("%d\n" % portd_port)
    assert False, "fails on purpose"


def test_killed_holding_a_port(portd_port):
    path = os.path.join(os.environ["SAMPLE_OUT"], "killed.port")
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % portd_port)
    os.rename(path + ".tmp", path)
    time.sleep(60)  # the run is killed here
