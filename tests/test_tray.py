"""The tray icon: a ring per state, and a menu that acts on a real assistant (under a virtual X display with
a system tray host, Xvfb + trayer)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from os1d.tray import STATES, draw


def test_every_state_has_its_own_icon() -> None:
    images = {s: np.asarray(draw(s)) for s in STATES}
    assert all(img.shape == (64, 64, 4) and img[..., 3].max() == 255 for img in images.values())
    for a in STATES:
        for b in STATES:
            if a < b:
                assert np.abs(images[a].astype(int) - images[b].astype(int)).sum() > 1000, (a, b)


PANEL = '"panel": ("panel" "trayer")'
"""trayer's panel window, as `xwininfo -tree` lists it."""


def _panel_up(env: dict[str, str]) -> bool:
    return PANEL in subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[str]:
    """A virtual display (a free number, from Xvfb itself) with trayer's panel up at its top right; its DISPLAY."""
    read, write = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "640x120x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    trayer: subprocess.Popen | None = None
    try:
        with os.fdopen(read) as ready:  # Xvfb writes its display number here once it takes clients
            display = f":{ready.readline().strip()}"
        assert display != ":", "Xvfb did not start"
        env = dict(os.environ, DISPLAY=display)
        log = tmp_path / "trayer.log"
        for _ in range(3):  # the panel is the test's desktop, not os1d: one that dies before it is up is started
            with log.open("a") as out:  # again (trayer died once in CI before any other client had connected)
                trayer = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                                           "--height", "32", "--transparent", "false", "--tint", "0x202020"],
                                          env=env, stdout=out, stderr=out)
            deadline = time.monotonic() + 20
            while trayer.poll() is None and not _panel_up(env) and time.monotonic() < deadline:
                time.sleep(0.1)
            if trayer.poll() is None and _panel_up(env):
                break
            trayer.kill()
            trayer.wait(10)
        assert trayer.poll() is None, f"trayer's panel never came up (exit {trayer.returncode}): {log.read_text()}"
        yield display
    finally:
        for proc in (trayer, xvfb):
            if proc is not None:
                proc.terminate()
                proc.wait(10)


def _icon_window(env: dict[str, str], timeout: float) -> tuple[int, int, int, int]:
    """The docked icon's position and size on the screen (it must sit inside trayer's panel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout
        panel = tree.split(PANEL, 1)
        docked = [line for line in panel[-1].splitlines() if '"OS1' in line] if len(panel) == 2 else []
        found = re.search(r"(\d+)x(\d+)[+-]\d+[+-]\d+\s+\+(-?\d+)\+(-?\d+)\s*$", docked[0]) if docked else None
        if found:  # e.g. `0x400007 "OS1: idle": ("os1d" "os1d")  32x30+0+0  +607+1`
            w, h, x, y = (int(v) for v in found.groups())
            return x, y, w, h
        time.sleep(0.2)
    raise AssertionError(f"the icon did not dock in trayer; windows: {tree}")


def _shot(env: dict[str, str], where: tuple[int, int, int, int], path: Path, unlike: list[np.ndarray] = (),
          timeout: float = 10.0) -> np.ndarray:
    """The icon's pixels, once they differ from every picture in `unlike` (the tray redraws on its own thread
    and GTK's loop: give it time); the last picture taken if they never do."""
    from PIL import Image

    x, y, w, h = where
    deadline = time.monotonic() + timeout
    while True:
        subprocess.run(["import", "-window", "root", str(path)], env=env, check=True, capture_output=True)
        pixels = np.asarray(Image.open(path).convert("RGB"))[y : y + h, x : x + w].astype(int)
        if all(np.abs(pixels - other).sum() > 2000 for other in unlike) or time.monotonic() > deadline:
            return pixels
        time.sleep(0.3)


def _menu_pick(env: dict[str, str], where: tuple[int, int, int, int], keys: list[str]) -> None:
    """Click the icon, wait for its menu, and choose with the keyboard as a user could."""
    x, y, w, h = where
    before = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", ".*"], env=env, capture_output=True,
                            text=True).stdout.split()
    subprocess.run(["xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1"], env=env, check=True)
    deadline = time.monotonic() + 10
    while True:
        now = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", ".*"], env=env, capture_output=True,
                             text=True).stdout.split()
        if set(now) - set(before):
            break
        assert time.monotonic() < deadline, "no menu opened on a click on the icon"
        time.sleep(0.1)
    time.sleep(0.3)
    for key in keys:
        subprocess.run(["xdotool", "key", key], env=env, check=True)
        time.sleep(0.2)


def test_the_docked_icon_follows_the_state_and_its_menu_mutes_forgets_and_quits(
        desktop: str, user_env, pulse, bus: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The real daemon with its tray under Xvfb + trayer: the icon docks, looks different per state (screenshots
    kept beside the test's files), and its menu, clicked and chosen from, mutes, forgets and quits."""
    from conftest import run_os1d
    from conftest import Mic
    from test_live_audio import Daemon, env_with

    env = {**env_with(user_env, pulse), "DBUS_SESSION_BUS_ADDRESS": bus, "DISPLAY": desktop}
    env.pop("PYSTRAY_BACKEND", None)
    mic = Mic(pulse)
    daemon = Daemon(env, tray=True)
    shots: dict[str, np.ndarray] = {}

    def status() -> dict:
        got = run_os1d(["status", "--json"], env)
        return json.loads(got.stdout) if got.returncode == 0 else {}

    def until(check, what: str, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"{what}; stderr: {daemon.stop()[1][-3000:]}"
            time.sleep(0.2)

    try:
        where = _icon_window(env, 60)
        daemon.wait_for(lambda e: e["event"] == "ModelLoaded" and e["model"] == "ultravox", 60)
        until(lambda: status().get("state") == "idle", "never idle")
        time.sleep(0.5)
        shots["idle"] = _shot(env, where, tmp_path / "tray-idle.png")
        assert run_os1d(["ask", "--quiet", "My name is Anna."], env).returncode == 0
        until(lambda: status().get("memories", 0) > 0, "the exchange was not remembered")

        _menu_pick(env, where, ["Down", "Return"])  # Mute (the first item that can be chosen)
        until(lambda: status().get("state") == "muted", "Mute in the menu did not mute")
        time.sleep(0.5)
        shots["muted"] = _shot(env, where, tmp_path / "tray-muted.png", [shots["idle"]])
        assert json.loads((Path(user_env["XDG_STATE_HOME"]) / "os1d" / "state.json").read_text()) == {"muted": True}
        _menu_pick(env, where, ["Down", "Return"])  # Mute again: unmuted
        until(lambda: status().get("state") == "idle" and status().get("muted") is False, "not unmuted")

        _menu_pick(env, where, ["Down", "Down", "Right", "Return"])  # Forget everything… → Yes, forget everything
        until(lambda: status().get("memories") == 0, "Forget everything did not forget")

        run_os1d(["say", "This sentence is long enough to keep OS1 speaking while a picture of its icon is "
                         "taken, and then some more words to be sure of it."], env)
        until(lambda: any(e["event"] == "StateChanged" and e["state"] == "speaking" for e in daemon.events),
              "never speaking")
        shots["speaking"] = _shot(env, where, tmp_path / "tray-speaking.png", [shots["idle"], shots["muted"]])

        _menu_pick(env, where, ["Down", "Down", "Down", "Return"])  # Quit
        until(lambda: daemon.proc.poll() is not None, "Quit in the menu did not end os1d")
    finally:
        code, stderr = daemon.stop()
        mic.stop()
    assert code == 0 and "Traceback" not in stderr, stderr[-3000:]
    assert "stopping (SIGTERM)" in stderr
    for a, b in (("idle", "muted"), ("idle", "speaking"), ("muted", "speaking")):
        assert np.abs(shots[a] - shots[b]).sum() > 2000, (a, b)  # each state looks different on the panel
