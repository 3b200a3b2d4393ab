"""`os1d service …` and the packaging files: the unit, the D-Bus activation file, the LaunchAgent."""

from __future__ import annotations

import json
import plistlib
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import run_os1d
from os1d import service
from speech import REPO


def test_the_packaging_files_are_the_templates() -> None:
    assert (REPO / "packaging/systemd/os1d.service").read_text() == service.SYSTEMD_UNIT
    assert (REPO / "packaging/dbus/org.os1d.OS1.service").read_text() == service.DBUS_ACTIVATION
    assert (REPO / "packaging/launchd/org.os1d.daemon.plist").read_text() == service.LAUNCHD_PLIST


def test_the_launch_agent_parses_and_names_the_program(tmp_path: Path) -> None:
    (plist,) = service.service_files("/opt/os1d/bin/os1d", home=tmp_path, platform="darwin")
    data = plistlib.loads(plist.text.encode())
    assert plist.path == tmp_path / "Library/LaunchAgents/org.os1d.daemon.plist"
    assert data["Label"] == "org.os1d.daemon" and data["ProgramArguments"] == ["/opt/os1d/bin/os1d", "run"]
    assert data["KeepAlive"] is True and data["StandardErrorPath"] == str(tmp_path / "Library/Logs/os1d/os1d.log")


def test_install_writes_every_file_with_the_installed_program(user_env: dict[str, str], tmp_path: Path) -> None:
    env = {**user_env, "HOME": str(tmp_path / "home")}
    done = run_os1d(["service", "install", "--no-start"], env)
    assert done.returncode == 0, done.stderr
    unit = Path(env["XDG_CONFIG_HOME"]) / "systemd/user/os1d.service"
    activation = Path(env["XDG_DATA_HOME"]) / "dbus-1/services/org.os1d.OS1.service"
    program = str(REPO / ".venv/bin/os1d")
    assert f"ExecStart={program} run" in unit.read_text() and "BusName=org.os1d.OS1" in unit.read_text()
    assert f"Exec={program} run" in activation.read_text()
    assert run_os1d(["service", "status"], env).stdout.startswith("service files: installed")
    if shutil.which("systemd-analyze"):  # (system mode: --user needs a running user manager)
        check = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert check.returncode == 0 and check.stderr == "", check.stderr
    gone = run_os1d(["service", "uninstall"], env)
    assert gone.returncode == 0 and not unit.exists() and not activation.exists()
    missing = run_os1d(["service", "status"], env)
    assert missing.returncode == 1 and "not installed" in missing.stdout


@pytest.mark.parametrize("verb", ["status", "mute", "stop"])
def test_control_verbs_without_a_bus_say_how_to_start(verb: str, user_env: dict[str, str]) -> None:
    env = {**user_env, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"}
    done = run_os1d([verb], env)
    assert done.returncode == 1 and "os1d is not running; start it with `os1d run`" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_control_command_starts_os1d_on_demand(user_env: dict[str, str], pulse, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With the D-Bus service file installed, `os1d status` on a bus where os1d is not running starts it."""
    from conftest import Mic
    from test_live_audio import env_with

    env = {**env_with(user_env, pulse), "HOME": str(tmp_path / "home")}
    assert run_os1d(["service", "install", "--no-start"], env).returncode == 0
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # (finds $XDG_DATA_HOME/dbus-1)
    assert bus.stdout is not None and bus.stderr is not None
    env["DBUS_SESSION_BUS_ADDRESS"] = bus.stdout.readline().strip()
    log: list[str] = []  # the bus's and the started os1d's stderr, read as it comes (a full pipe would block os1d)
    threading.Thread(target=lambda: log.extend(iter(bus.stderr.readline, "")), daemon=True).start()
    mic = Mic(pulse)
    try:
        started = run_os1d(["status", "--json"], env)
        assert started.returncode == 0, started.stderr
        assert "starting os1d (its D-Bus service file is installed)" in started.stderr
        assert json.loads(started.stdout)["state"] in ("starting", "idle")
        again = run_os1d(["status"], env)  # the same daemon, now running
        assert again.returncode == 0 and "starting os1d" not in again.stderr
        quitting = subprocess.run(["gdbus", "call", "--session", "--dest", "org.os1d.OS1", "--object-path",
                               "/org/os1d/OS1", "--method", "org.os1d.OS1.Quit"], env=env, capture_output=True)
        assert quitting.returncode == 0
        deadline = time.monotonic() + 30
        while "true" in subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                                        "--object-path", "/org/freedesktop/DBus", "--method",
                                        "org.freedesktop.DBus.NameHasOwner", "org.os1d.OS1"], env=env,
                                       capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "os1d did not quit; its log:\n" + "".join(log[-40:])
            time.sleep(0.5)
    finally:
        mic.stop()
        bus.terminate()
        bus.wait(10)
