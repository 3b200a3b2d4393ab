"""The D-Bus API on a real session bus (a private dbus-daemon), from the CLI and from gdbus."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path


from conftest import KIT_CONFIG, Mic, Pulse, run_os1d, with_key
from test_live_audio import Daemon, env_with

DEST = ["--dest", "org.os1d.OS1", "--object-path", "/org/os1d/OS1"]


def gdbus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gdbus", "call", "--session", *DEST, *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_every_method_property_and_signal(user_env, pulse: Pulse, bus: str) -> None:  # type: ignore[no-untyped-def]
    env = {**env_with(user_env, pulse), "DBUS_SESSION_BUS_ADDRESS": bus}
    nobody = run_os1d(["status"], env)
    assert nobody.returncode == 1 and nobody.stderr.strip() == (
        "os1d: error: os1d is not running; start it with `os1d run` (or `os1d service install` to run it always)")
    mic = Mic(pulse)
    daemon = Daemon(env)
    monitor = subprocess.Popen(["gdbus", "monitor", "--session", *DEST], env=env, stdout=subprocess.PIPE, text=True)
    try:
        daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "ultravox", 60)
        second = run_os1d(["run", "--no-tray"], env)
        assert second.returncode == 1 and "os1d is already running" in second.stderr.strip().splitlines()[-1]

        status = json.loads(run_os1d(["status", "--json"], env).stdout)
        assert status["state"] in ("idle", "error") and status["muted"] is False and status["memories"] == 0

        asked = run_os1d(["ask", "--quiet", "My name is Anna. What is the capital of France?"], env)
        assert asked.returncode == 0, asked.stderr
        assert asked.stdout.startswith("Hello from the tiny stand-in model")
        deadline = time.monotonic() + 20
        while json.loads(run_os1d(["status", "--json"], env).stdout)["memories"] == 0:
            assert time.monotonic() < deadline, "the exchange was not remembered"
            time.sleep(0.3)

        recalled = gdbus(env, "--method", "org.os1d.OS1.Recall", "what is my name?", "3")
        assert recalled.returncode == 0, recalled.stderr
        assert "My name is Anna." in recalled.stdout
        bad_k = gdbus(env, "--method", "org.os1d.OS1.Recall", "my name", "0")
        assert bad_k.returncode != 0 and "k must be 1 to 100, not 0" in bad_k.stderr
        empty = gdbus(env, "--method", "org.os1d.OS1.Ask", "   ")
        assert empty.returncode != 0 and "org.os1d.OS1.Error.InvalidArgs" in empty.stderr
        wrong_type = gdbus(env, "--method", "org.os1d.OS1.ForgetMemory", "not-a-number")
        assert wrong_type.returncode != 0

        memory_id = int(recalled.stdout.split("(uint64 ", 1)[1].split(",", 1)[0])
        assert gdbus(env, "--method", "org.os1d.OS1.ForgetMemory", str(memory_id)).stdout.strip() == "(true,)"
        assert gdbus(env, "--method", "org.os1d.OS1.ForgetMemory", str(memory_id)).stdout.strip() == "(false,)"

        assert run_os1d(["mute"], env).stdout.strip() == "muted"
        muted = json.loads(run_os1d(["status", "--json"], env).stdout)
        assert muted["muted"] is True and muted["state"] == "muted"
        refused = run_os1d(["say", "hello"], env)
        assert refused.returncode == 1 and "OS1 is muted" in refused.stderr
        assert run_os1d(["unmute"], env).stdout.strip() == "listening"
        assert run_os1d(["say", "Hello there."], env).returncode == 0
        assert run_os1d(["stop"], env).returncode == 0
        def prop(name: str) -> str:
            got = subprocess.run(["gdbus", "call", "--session", *DEST, "--method",
                                  "org.freedesktop.DBus.Properties.Get", "org.os1d.OS1", name], env=env,
                                 capture_output=True, text=True)
            assert got.returncode == 0, got.stderr
            return got.stdout

        assert "<'" in prop("Version")  # a client that comes late reads where things stand:
        assert "My name is Anna. What is the capital of France?" in prop("LastTranscript")
        assert "Hello from the tiny stand-in model" in prop("LastReply")
        forgot = gdbus(env, "--method", "org.os1d.OS1.Forget")
        assert forgot.returncode == 0 and forgot.stdout.startswith("(uint32 ")
        assert json.loads(run_os1d(["status", "--json"], env).stdout)["memories"] == 0

        assert gdbus(env, "--method", "org.os1d.OS1.Quit").returncode == 0
        daemon.proc.wait(30)
        code, stderr = daemon.stop()
        assert code == 0, stderr
    finally:
        daemon.stop()
        monitor.terminate()
        signals, _ = monitor.communicate(timeout=10)
        mic.stop()
    assert "org.os1d.OS1.StateChanged ('muted',)" in signals
    assert "org.os1d.OS1.Transcript ('user', 'My name is Anna. What is the capital of France?')" in signals
    assert "org.os1d.OS1.Transcript ('assistant', 'Hello from the tiny stand-in model" in signals
    assert "org.freedesktop.DBus.Properties.PropertiesChanged ('org.os1d.OS1', {'Muted': <true>}" in signals
    # every event also travels whole: type, exchange, time and a payload of a fixed signature per type
    typed = re.search(r"org\.os1d\.OS1\.Event \('Transcript', uint32 (\d+), [0-9.e+-]+, "
                      r"<\('user', 'My name is Anna\. What is the capital of France\?', 0\.0\)>\)", signals)
    assert typed, signals[-3000:]
    exchange = int(typed.group(1))
    assert exchange >= 1 and f"org.os1d.OS1.Event ('ReplyDone', uint32 {exchange}, " in signals
    assert "org.os1d.OS1.Event ('StateChanged', uint32 0, " in signals  # (before the first exchange)
    logged = [e for e in daemon.events if e["event"] == "Transcript" and e["role"] == "user"]
    assert [e["turn"] for e in logged] == [exchange]


def test_mute_survives_a_restart(user_env, pulse: Pulse, bus: str) -> None:  # type: ignore[no-untyped-def]
    env = {**env_with(user_env, pulse), "DBUS_SESSION_BUS_ADDRESS": bus}
    mic = Mic(pulse)
    try:
        for expected in (False, True):
            daemon = Daemon(env)
            try:
                daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "openwakeword", 60)
                time.sleep(0.5)
                status = json.loads(run_os1d(["status", "--json"], env).stdout)
                assert status["muted"] is expected
                if not expected:
                    run_os1d(["mute"], env)
            finally:
                daemon.stop()
    finally:
        mic.stop()
    assert json.loads((Path(user_env["XDG_STATE_HOME"]) / "os1d" / "state.json").read_text()) == {"muted": True}


def test_sighup_reloads_a_good_config_and_keeps_running_on_a_bad_one(user_env, pulse: Pulse, bus: str) -> None:  # type: ignore[no-untyped-def]
    import signal


    env = {**env_with(user_env, pulse), "DBUS_SESSION_BUS_ADDRESS": bus}
    config = Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml"
    mic = Mic(pulse)
    daemon = Daemon(env)
    try:
        daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "ultravox", 60)
        pid = daemon.proc.pid
        config.write_text(with_key(KIT_CONFIG, "wake", "threshold = 7"))
        daemon.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        assert daemon.proc.poll() is None
        assert json.loads(run_os1d(["status", "--json"], env).stdout)["state"] in ("idle", "error", "starting")
        config.write_text(with_key(KIT_CONFIG, "wake", "threshold = 0.6"))
        loaded = len([e for e in daemon.events if e["event"] == "ModelLoaded" and e["model"] == "openwakeword"])
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda e: len([x for x in daemon.events if x["event"] == "ModelLoaded"
                                       and x["model"] == "openwakeword"]) > loaded, 60)
        daemon.wait_for(lambda e: len([x for x in daemon.events if x["event"] == "ModelLoaded"
                                       and x["model"] == "ultravox"]) > 1, 60)  # (signals are handled again)
        assert daemon.proc.pid == pid and daemon.proc.poll() is None  # the same process, started afresh
        deadline = time.monotonic() + 20
        while run_os1d(["status"], env).returncode != 0:  # back on the bus
            assert time.monotonic() < deadline
            time.sleep(0.3)
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0, stderr
    assert ("the config was not reloaded: " in stderr and "wake.threshold = 7 is out of range" in stderr
            and "os1d keeps running with the config it started with" in stderr)
    assert "reloading the config (SIGHUP)" in stderr and "Traceback" not in stderr


def test_signals_while_models_load_reload_or_stop_cleanly(user_env, pulse: Pulse, bus: str) -> None:  # type: ignore[no-untyped-def]
    """A `systemctl reload` (SIGHUP) or stop (SIGTERM) that comes while os1d is still starting."""
    import signal

    env = {**env_with(user_env, pulse), "DBUS_SESSION_BUS_ADDRESS": bus}
    mic = Mic(pulse)
    daemon = Daemon(env)

    def starts() -> int:
        return len([e for e in daemon.events if e["event"] == "StateChanged" and e["state"] == "starting"])

    try:
        daemon.wait_for(lambda e: e["event"] == "StateChanged" and e["state"] == "starting", 60)
        assert not [e for e in daemon.events if e["event"] == "ModelLoaded" and e["model"] == "ultravox"]
        pid = daemon.proc.pid
        daemon.proc.send_signal(signal.SIGHUP)  # while the models load
        daemon.wait_for(lambda e: starts() == 2, 60)
        assert daemon.proc.pid == pid and daemon.proc.poll() is None  # started afresh, not killed
        daemon.wait_for(lambda e: e["event"] == "StateChanged" and e["state"] == "idle" and starts() == 2, 60)
        daemon.proc.send_signal(signal.SIGTERM)  # listening, while the other models load
        daemon.proc.wait(30)
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0, stderr
    assert "reloading the config (SIGHUP)" in stderr and "stopping (SIGTERM)" in stderr and "Traceback" not in stderr
    assert not [e for e in daemon.events if e["event"] == "ModelLoaded" and e["model"] == "ultravox"][1:]
