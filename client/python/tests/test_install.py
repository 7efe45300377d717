"""The package as a user installs it: pip install --no-build-isolation into
a virtual environment (offline), then pytest finds the plugin through its
pytest11 entry point, with no -p and nothing of the source tree on the
path."""

import os
import shutil
import subprocess
import sys


from conftest import HERE, SRC, Daemon, clean_env, pool_slice


def test_pip_install_offline_and_the_entry_point(tmp_path):
    import setuptools  # noqa: F401 - required (python3-setuptools)
    src = tmp_path / "src"  # a copy: the build leaves files behind
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns(
        "tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages",
                    "--without-pip", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = clean_env()
    env.pop("PYTHONPATH")
    out = subprocess.run([py, "-m", "pip", "install", "-q",
                          "--no-build-isolation", "--no-index", str(src)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    where = subprocess.run([py, "-c", "import portd; print(portd.__file__)"],
                           capture_output=True, text=True, env=env,
                           cwd=tmp_path, check=True).stdout
    assert where.startswith(str(venv))
    d = Daemon(pool_slice(5))
    try:
        sample = tmp_path / "sample"
        shutil.copytree(os.path.join(HERE, "sample"), sample)
        run = subprocess.run(
            [py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "test_other.py"], capture_output=True, text=True, cwd=sample,
            env=dict(env, PORTD_SOCKET=d.socket, SAMPLE_OUT=str(tmp_path)))
        assert run.returncode == 0, run.stdout + run.stderr
        assert "2 passed" in run.stdout
    finally:
        d.stop()


def test_pydoc_is_a_complete_reference():
    """Every public name has a docstring, and so does every public method
    and property of the classes; pydoc renders the package."""
    import inspect

    import portd
    import portd.pytest_plugin as plugin
    for name in portd.__all__:
        obj = getattr(portd, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name
        if inspect.isclass(obj) and not issubclass(obj, Exception):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                assert getattr(member, "__doc__", None), "%s.%s" % (name,
                                                                    attr)
    for name in plugin.__all__:
        assert getattr(plugin, name).__doc__, name
    out = subprocess.run([sys.executable, "-m", "pydoc", "portd"],
                         capture_output=True, text=True,
                         env=clean_env(PAGER="cat"), check=True).stdout
    for needle in ("Finding the daemon", "class Client", "class Lease",
                   "pick_unused_port(pid=None", "session",
                   "DaemonUnavailable"):
        assert needle in out
