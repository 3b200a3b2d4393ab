"""`os1d service install|uninstall|status`: os1d as a user service (systemd on Linux, launchd on macOS).

The files are rendered from the templates below; packaging/ holds the same files with @OS1D@ in place of
the path of the installed `os1d`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError

SYSTEMD_UNIT = """\
[Unit]
Description=os1d, a local and private voice companion
After=pipewire-pulse.service pulseaudio.service

[Service]
Type=dbus
BusName=org.os1d.OS1
ExecStart=@OS1D@ run
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
StandardOutput=journal
StandardError=journal

[Install]
WantedBy=default.target
"""
DBUS_ACTIVATION = """\
[D-BUS Service]
Name=org.os1d.OS1
Exec=@OS1D@ run
SystemdService=os1d.service
"""
LAUNCHD_PLIST = """\
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>org.os1d.daemon</string>
  <key>ProgramArguments</key>
  <array>
    <string>@OS1D@</string>
    <string>run</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <true/>
  <key>ProcessType</key>
  <string>Interactive</string>
  <key>StandardOutPath</key>
  <string>@LOGS@/os1d.log</string>
  <key>StandardErrorPath</key>
  <string>@LOGS@/os1d.log</string>
</dict>
</plist>
"""


@dataclass(frozen=True)
class ServiceFile:
    path: Path
    text: str


def os1d_program() -> str:
    """The installed `os1d` beside this Python (a virtual environment's, or the system's)."""
    script = Path(sys.executable).parent / "os1d"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    found = shutil.which("os1d")
    if found:
        return str(Path(found).resolve())
    raise UserError("cannot find the installed `os1d` program; install os1d with pip first")


def service_files(program: str, home: Path | None = None, platform: str = sys.platform) -> list[ServiceFile]:
    home = home or Path.home()
    if platform == "darwin":
        logs = home / "Library" / "Logs" / "os1d"
        plist = LAUNCHD_PLIST.replace("@OS1D@", program).replace("@LOGS@", str(logs))
        return [ServiceFile(home / "Library" / "LaunchAgents" / "org.os1d.daemon.plist", plist)]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return [ServiceFile(config / "systemd" / "user" / "os1d.service", SYSTEMD_UNIT.replace("@OS1D@", program)),
            ServiceFile(data / "dbus-1" / "services" / "org.os1d.OS1.service",
                        DBUS_ACTIVATION.replace("@OS1D@", program))]


def _manager(platform: str) -> list[list[str]]:
    """The commands that enable and start the service."""
    if platform == "darwin":
        plist = service_files("", platform=platform)[0].path
        return [["launchctl", "load", "-w", str(plist)]]
    return [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "os1d.service"]]


def _call(cmd: list[str]) -> str | None:
    """Run a service-manager command; the reason it failed, or None."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        return f"{cmd[0]} is not available here"
    except subprocess.TimeoutExpired:
        return f"`{' '.join(cmd)}` did not answer"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return None


def install(start: bool = True, platform: str = sys.platform) -> int:
    files = service_files(os1d_program(), platform=platform)
    for f in files:
        f.path.parent.mkdir(parents=True, exist_ok=True)
        part = f.path.with_name(f.path.name + ".part")
        part.write_text(f.text)
        part.replace(f.path)
        print(f"wrote {f.path}")
    if platform == "darwin":
        (Path.home() / "Library" / "Logs" / "os1d").mkdir(parents=True, exist_ok=True)
    if not start:
        return 0
    for cmd in _manager(platform):
        if problem := _call(cmd):
            raise UserError(f"the service files are written, but `{' '.join(cmd)}` failed: {problem}; "
                            "start os1d by hand with `os1d run`")
    print("os1d is running as a user service; `os1d status` shows it")
    return 0


def uninstall(platform: str = sys.platform) -> int:
    files = service_files("", platform=platform)
    stop = [["launchctl", "unload", "-w", str(files[0].path)]] if platform == "darwin" else [
        ["systemctl", "--user", "disable", "--now", "os1d.service"]]
    for cmd in stop:
        if files[0].path.exists() and (problem := _call(cmd)):
            print(f"os1d: note: `{' '.join(cmd)}`: {problem}", file=sys.stderr)
    for f in files:
        if f.path.exists():
            f.path.unlink()
            print(f"removed {f.path}")
    if platform != "darwin":
        _call(["systemctl", "--user", "daemon-reload"])
    return 0


def status(platform: str = sys.platform) -> int:
    files = service_files("", platform=platform)
    installed = all(f.path.exists() for f in files)
    print(f"service files: {'installed' if installed else 'not installed'} ({files[0].path})")
    if installed and platform != "darwin":
        try:
            state = subprocess.run(["systemctl", "--user", "is-active", "os1d.service"], capture_output=True,
                                   text=True, timeout=30).stdout.strip() or "unknown"
        except (FileNotFoundError, subprocess.TimeoutExpired):
            state = "unknown (no systemctl --user here)"
        print(f"service: {state}")
    return 0 if installed else 1
