"""The tray icon: OS1's soft ring, drawn per state with Pillow, and a menu (pystray, on the main thread).

The icon only shows and asks; what its menu does runs in the daemon's event loop (`TrayActions`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("os1d")
SIZE = 64
CORAL = (232, 115, 90)
COLORS = {  # ring colour, ring width (of SIZE), inner glow
    "starting": ((232, 170, 150), 4, 0),
    "idle": (CORAL, 5, 0),
    "listening": ((246, 128, 96), 8, 70),
    "thinking": ((214, 120, 170), 6, 40),
    "speaking": ((250, 150, 80), 8, 150),
    "muted": ((140, 140, 140), 5, 0),
    "error": ((200, 40, 40), 6, 0),
}
STATES = tuple(COLORS)


def draw(state: str, size: int = SIZE) -> Any:
    """The ring for `state` (an RGBA Pillow image): thinking is an open arc, muted is crossed out."""
    from PIL import Image, ImageDraw, ImageFilter

    color, width, glow = COLORS.get(state, COLORS["idle"])
    scale = 4  # drawn large, scaled down: soft edges
    big = size * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    pad = 6 * scale
    box = (pad, pad, big - pad, big - pad)
    if glow:
        inner = (pad * 3, pad * 3, big - pad * 3, big - pad * 3)
        pen.ellipse(inner, fill=(*color, glow))
    if state in ("thinking", "error"):
        pen.arc(box, start=-60, end=240, fill=(*color, 255), width=width * scale)
    else:
        pen.ellipse(box, outline=(*color, 255), width=width * scale)
    if state == "muted":
        pen.line((pad, big - pad, big - pad, pad), fill=(*color, 255), width=width * scale)
    img = img.filter(ImageFilter.GaussianBlur(scale / 2))
    return img.resize((size, size), Image.LANCZOS)


@dataclass
class TrayActions:
    """What the menu does (each is called on the tray's thread and must hand over to the daemon's loop)."""

    mute: Callable[[bool], None]
    forget: Callable[[], None]
    quit: Callable[[], None]


def display_available() -> bool:
    """A desktop to show an icon on (macOS always has one)."""
    return sys.platform == "darwin" or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Tray:
    """The icon; `show()` may be called from any thread."""

    def __init__(self) -> None:
        if sys.platform.startswith("linux"):
            try:  # python-xlib's displays are only thread-safe (show() runs on the daemon's thread) with this
                import Xlib.threaded  # noqa: F401
            except ImportError:
                pass
        import pystray

        self.actions: TrayActions | None = None
        """Set by the daemon once it runs; until then the menu does nothing."""
        self.state, self.muted = "starting", False
        self._changed = threading.Condition()
        self._dirty = False
        self._stopping = False
        item, menu = pystray.MenuItem, pystray.Menu
        self.menu = menu(
            item(lambda _i: f"OS1: {self.state}", None, enabled=False),
            item("Mute", self._toggle_mute, checked=lambda _i: self.muted, default=True),
            item("Forget everything…", menu(item("Yes, forget everything", self._forget))),
            item("Quit", self._quit),
        )
        self.icon = pystray.Icon("os1d", draw("starting"), "OS1", self.menu)

    def _toggle_mute(self, *_: Any) -> None:
        if self.actions:
            self.actions.mute(not self.muted)

    def _forget(self, *_: Any) -> None:
        if self.actions:
            self.actions.forget()

    def _quit(self, *_: Any) -> None:
        if self.actions:
            self.actions.quit()

    def show(self, state: str | None = None, muted: bool | None = None) -> None:
        """Note the new state; a thread of the tray's own redraws the icon (X calls never block the caller)."""
        with self._changed:
            if state is not None:
                self.state = state
            if muted is not None:
                self.muted = muted
            self._dirty = True
            self._changed.notify()

    def _redraw(self) -> None:
        while True:
            with self._changed:
                while not self._dirty:
                    self._changed.wait()
                self._dirty = False
                state = self.state
            self.icon.icon = draw(state)
            self.icon.title = f"OS1: {state}"
            try:
                self.icon.update_menu()
            except Exception:  # backends without a menu (plain X) have nothing to update
                pass

    def run(self) -> None:
        """Blocks (the main thread) until stop()."""
        threading.Thread(target=self._redraw, name="os1d-tray", daemon=True).start()
        try:
            self.icon.run(setup=lambda icon: setattr(icon, "visible", True))
        except Exception:
            if not self._stopping:
                raise
            # pystray's GTK backends tidy up their notifications on the way out, and fail where the desktop
            # has no notification service: nothing is lost, os1d is ending anyway

    def stop(self) -> None:
        self._stopping = True
        self.icon.stop()
