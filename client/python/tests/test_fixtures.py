"""The pytest plugin, run the way a user runs it: the sample suite in its
own pytest with `-p portd.pytest_plugin -n 4` (pytest-xdist) against a real
daemon, then checks on what it leased."""

import glob
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import HERE, Daemon, clean_env, plain_bind_ok, pool_slice

SAMPLE = os.path.join(HERE, "sample")


@pytest.fixture(scope="module")
def daemon():
    d = Daemon(pool_slice(4))
    yield d
    d.stop()


def pytest_run(daemon, out, *args, env=None, wait=True):
    argv = [sys.executable, "-m", "pytest", "-p", "portd.pytest_plugin",
            "-p", "no:cacheprovider", "-q", "-o", "addopts=",
            "--rootdir", SAMPLE] + list(args)
    env = clean_env(SAMPLE_OUT=str(out), **(env or {}))
    if daemon is not None:
        env["PORTD_SOCKET"] = daemon.socket
    proc = subprocess.Popen(argv, cwd=SAMPLE, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if not wait:
        return proc
    output, _ = proc.communicate(timeout=120)
    return proc.returncode, output


def test_forty_servers_under_xdist(daemon, tmp_path):
    import xdist  # noqa: F401 - required (python3-pytest-xdist), not skipped
    rc, output = pytest_run(daemon, tmp_path, "-n", "4",
                            "test_http.py", "test_other.py")
    # 0, not 5 (nothing collected) or 1: every test ran and passed.
    assert rc == 0, output
    assert "42 passed" in output, output
    rows = [open(f).read().split() for f in
            sorted(glob.glob(str(tmp_path / "*.port")))]
    assert len(rows) == 40
    ports = [int(port) for port, _ in rows]
    assert len(set(ports)) == 40  # all distinct
    assert len({worker for _, worker in rows}) > 1  # really in parallel
    lo, hi = daemon.pool
    assert all(lo <= p <= hi for p in ports)
    # All released, and free for anybody after the run.
    with daemon.client() as c:
        assert c.list() == []
        assert c.status()["counters"]["leases_released"] >= 42
    assert all(plain_bind_ok(p) for p in ports)


def test_a_failing_test_releases_its_port(daemon, tmp_path):
    rc, output = pytest_run(daemon, tmp_path,
                            "test_failing.py::test_fails_holding_a_port",
                            env={"SAMPLE_FAIL": "1"})
    assert rc == 1 and "fails on purpose" in output, output
    port = int((tmp_path / "failing.port").read_text())
    with daemon.client() as c:
        assert c.list() == []
    assert plain_bind_ok(port)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_run_releases_its_port(daemon, tmp_path, sig):
    proc = pytest_run(daemon, tmp_path,
                      "test_failing.py::test_killed_holding_a_port",
                      env={"SAMPLE_FAIL": "1"}, wait=False)
    try:
        path = tmp_path / "killed.port"
        deadline = time.monotonic() + 30
        while not path.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        port = int(path.read_text())
        with daemon.client() as c:
            assert [x.port for x in c.list()] == [port]
            assert not plain_bind_ok(port)  # held during the test
            proc.send_signal(sig)
            proc.communicate(timeout=30)
            deadline = time.monotonic() + 5
            while c.list() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert c.list() == []
        assert plain_bind_ok(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_no_daemon_is_a_clear_error_not_a_fallback(tmp_path):
    missing = str(tmp_path / "none.sock")
    rc, output = pytest_run(None, tmp_path, "test_other.py",
                            env={"PORTD_SOCKET": missing})
    assert rc == 1, output
    assert "2 error" in output, output
    assert "portd fixtures need a portd daemon" in output
    assert missing in output
    assert not glob.glob(str(tmp_path / "*.port"))
    rc, output = pytest_run(None, tmp_path, "test_other.py",
                            "--portd-socket", missing)
    assert rc == 1 and missing in output, output
