"""The tray icon: a ring per state, and a menu that acts on a real assistant (under a virtual X display with
a system tray host, Xvfb + trayer)."""

from __future__ import annotations

import json
import os
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


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[str]:
    """A virtual display with trayer docked at its top right; its DISPLAY."""
    display = f":{90 + os.getpid() % 100}"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "640x120x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display)
    deadline = time.monotonic() + 10
    while subprocess.run(["xwininfo", "-root"], env=env, capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    trayer = subprocess.Popen(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                               "--height", "32", "--transparent", "false", "--tint", "0x202020"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield display
    trayer.terminate()
    xvfb.terminate()
    trayer.wait(10)
    xvfb.wait(10)


def test_the_menu_mutes_forgets_and_quits(desktop: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The menu's items, as a click on them would call them, act on a real assistant (the plain X tray of the
    test desktop shows no menus, so the items are called here rather than clicked)."""
    import asyncio
    import signal

    from harness import kit_config
    from os1d import desktop as desk
    from os1d.assistant import Assistant
    from os1d.audio.speaker import TimelineSpeaker
    from os1d.config import MemoryConfig
    from os1d.state import State
    from speech import kit_dir

    monkeypatch.setenv("DISPLAY", desktop)
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    killed: list[int] = []
    monkeypatch.setattr(desk.os, "kill", lambda pid, sig: killed.append(sig))
    from os1d.tray import Tray

    def item(menu, text: str):  # type: ignore[no-untyped-def]
        return next(i for i in menu.items if i.text == text)

    async def main() -> None:
        sinks: list = []
        assistant = Assistant(kit_config(memory=MemoryConfig(dir=str(tmp_path / "memory"))), kit_dir(),
                              lambda e: [sink(e) for sink in sinks], TimelineSpeaker())
        await assistant.load()
        tray = Tray()
        try:
            sinks.append(desk.attach(tray, assistant, None))  # as the daemon wires it
            assistant.conversation.remember("My name is Anna.", "Nice to meet you, Anna.")
            await assistant.conversation.flush()
            memory = await assistant.conversation.loaded_memory()
            assert memory.store.count() >= 2
            item(tray.menu, "Mute")(tray.icon)
            await asyncio.sleep(0.2)
            assert assistant.muted and assistant.state.state == State.MUTED and tray.muted
            assert json.loads((tmp_path / "state" / "os1d" / "state.json").read_text()) == {"muted": True}
            item(tray.menu, "Mute")(tray.icon)
            await asyncio.sleep(0.2)
            assert not assistant.muted and assistant.state.state == State.IDLE
            item(item(tray.menu, "Forget everything…").submenu, "Yes, forget everything")(tray.icon)
            for _ in range(50):
                await asyncio.sleep(0.1)
                if await assistant.models.memory_lane.run(memory.store.count) == 0:
                    break
            assert await assistant.models.memory_lane.run(memory.store.count) == 0
            assert assistant.conversation.history == []
            item(tray.menu, "Quit")(tray.icon)
            assert killed == [signal.SIGTERM]
        finally:
            assistant.close()

    asyncio.run(main())
