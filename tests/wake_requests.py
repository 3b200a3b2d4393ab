"""The wake phrase followed by a request, as people say it: many voices, speeds, gaps, one breath.

Shared by tests/test_wake_to_request.py and bench/bench_wer.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from speech import espeak, join, kokoro, silence
from os1d.audio.chunk import RATE

REQUESTS = [
    "My name is Theodore, and I write letters for other people.",
    "Can you remind me to call my mother on Sunday?",
    "What time is it?",
    "Do you remember me?",
    "I went to the beach with my sister last summer.",
    "What do you think about love and loneliness?",
    "Tell me a story about the sea.",
    "Please wake me up at seven tomorrow.",
]
NO_PAUSE_REQUEST = "What time is it?"
"""Said in one breath with the wake phrase: "hey jarvis what time is it"."""
KOKORO_VOICES = [("jf_alpha", 0.8), ("jm_kumo", 1.0), ("jf_nezumi", 1.0), ("jf_gongitsune", 0.9),
                 ("jf_tebukuro", 1.1)]
ESPEAK_VOICES = [("en-us+m3", 150), ("en-gb+f2", 175), ("en-gb-scotland+m1", 160), ("en-gb-x-rp+f4", 140),
                 ("en-us+m1", 175), ("en-us-nyc+f2", 160)]
GAPS_MS = (0, 100, 200, 300, 500, 800)
"""Silence between the wake phrase and the request in spliced clips."""
SEPARATION_S = 3.0
"""Silence after each case (longer than the wake word's refractory time and the hangover)."""


@dataclass(frozen=True)
class Case:
    name: str
    """Voice and how the request follows the phrase, e.g. "jm_kumo@1.0 gap 200 ms"."""
    request: str
    """The words said after the wake phrase."""
    audio: np.ndarray
    """Wake phrase + request, 16 kHz int16."""
    request_audio: np.ndarray
    """The request alone (the reference for Whisper)."""


def trim(pcm: np.ndarray, threshold: int = 200) -> np.ndarray:
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    return pcm[loud[0] : loud[-1] + 1] if len(loud) else pcm


def say(text: str, voice: tuple[str, float]) -> np.ndarray:
    name, speed = voice
    return kokoro(text, name, speed) if name.startswith(("jf_", "jm_")) else espeak(text, name, int(speed))


def cases(gaps: tuple[int, ...] = GAPS_MS) -> list[Case]:
    """Each voice × (each gap, spliced; one synthesis call with a comma; for Kokoro, one with no pause)."""
    out = []
    k = 0
    for voice in KOKORO_VOICES + ESPEAK_VOICES:
        label = f"{voice[0]}@{voice[1]}"
        wake = trim(say("Hey Jarvis.", voice))
        # with no pause at all, the pretrained hey_jarvis head fires for the Kokoro voices only
        modes = (*gaps, "comma", "no pause") if voice in KOKORO_VOICES else (*gaps, "comma")
        for mode in modes:
            if mode == "no pause":
                request = NO_PAUSE_REQUEST
            else:
                # "Jarvis" spliced onto "do" with no gap at all fuses into one sound ("Jarvi-zdu") that
                # whisper-base hears as "who", with or without the cut; said in one breath it survives
                while mode == 0 and REQUESTS[k % len(REQUESTS)].startswith("Do "):
                    k += 1
                request = REQUESTS[k % len(REQUESTS)]
                k += 1
            alone = trim(say(request, voice))
            if mode == "comma":
                name, audio = "one breath", trim(say(f"Hey Jarvis, {request}", voice))
            elif mode == "no pause":
                name, audio = "no pause", trim(say(f"Hey Jarvis {request.lower()}", voice))
            else:
                name, audio = f"gap {mode} ms", join(wake, silence(mode / 1000), alone)
            out.append(Case(f"{label} {name}", request, audio, alone))
    return out


def stream(items: list[Case]) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """All cases in one recording, each followed by silence; and each case's (start, end) in seconds."""
    parts = [silence(1.0)]
    spans = []
    t = 1.0
    for case in items:
        audio = join(case.audio)
        parts += [audio, silence(SEPARATION_S)]
        spans.append((t, t + len(audio) / RATE + SEPARATION_S))
        t = spans[-1][1]
    return join(*parts), spans
