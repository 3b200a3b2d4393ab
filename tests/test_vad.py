"""Utterance segmentation: boundaries, pre-roll, hangover, the 30 s cap, timeouts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from os1d.agent.whisper import WhisperTranscriber
from os1d.audio.chunk import FRAME, RATE, AudioChunk
from os1d.audio.vad import LOOK_MS, WAKE_LOOK_MS, Midway, Paused, Resumed, Segmenter, Started, TimedOut, Utterance
from os1d.config import VadConfig
from speech import espeak, join, silence, speech_bounds, words
from wake_requests import say, trim


def run(seg: Segmenter, pcm: np.ndarray, arm_at: float = 0.0, pauses: bool = False,
        midway: bool = False) -> list[tuple[float, object]]:
    """Feed pcm frame by frame, arming at arm_at seconds; return (time, event) pairs (Paused and Resumed, and
    Midway, only if asked for)."""
    out: list[tuple[float, object]] = []
    for i in range(0, len(pcm), FRAME):
        chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
        events = seg.feed(chunk)
        if not seg.active and abs(chunk.end - arm_at) < 1e-6:
            events += seg.arm(chunk.end)
        out += [(chunk.end, e) for e in events
                if (pauses or not isinstance(e, (Paused, Resumed))) and (midway or not isinstance(e, Midway))]
    return out


def test_boundaries_keep_the_first_syllable_and_end_after_the_hangover() -> None:
    said = espeak("remind me to water the plants tomorrow morning")
    pcm = join(silence(0.96), said, silence(2.0))
    lead = 0.96 + speech_bounds(said)[0]
    tail = 0.96 + speech_bounds(said)[1]
    events = run(Segmenter(VadConfig()), pcm, arm_at=0.48)
    (t_start, started), (t_end, utt) = events
    assert isinstance(started, Started) and isinstance(utt, Utterance)
    assert lead - 0.35 <= started.start <= lead  # pre-roll reaches back before the first sound
    assert t_start - lead < 0.2  # onset is noticed quickly
    assert utt.reason == "silence"
    end_of_audio = utt.start + utt.duration
    assert tail + 0.3 <= end_of_audio <= tail + 0.7  # a 500 ms tail keeps soft final sounds
    assert 0.45 <= t_end - tail <= 0.5 + 0.2  # endpoint = hangover (500 ms) + at most a frame or two


def test_longer_hangover_ends_later_and_bridges_pauses() -> None:
    pcm = join(silence(0.8), espeak("one two"), silence(0.4), espeak("three four"), silence(2.0))
    short = [e for _, e in run(Segmenter(VadConfig(hangover_ms=200)), pcm, arm_at=0.32) if isinstance(e, Utterance)]
    long = [e for _, e in run(Segmenter(VadConfig(hangover_ms=800)), pcm, arm_at=0.32) if isinstance(e, Utterance)]
    assert short[0].duration < long[0].duration  # 200 ms cuts at the pause, 800 ms keeps both halves
    assert long[0].duration > 1.3


def test_five_minutes_of_speech_is_cut_cleanly_at_the_cap() -> None:
    sentence = espeak("and then we talked about everything under the sun for a very long time", speed=200)
    speech = np.concatenate([sentence] * int(np.ceil(300 * RATE / len(sentence))))[: 300 * RATE]
    speech[speech == 0] = 1
    noise = (np.random.default_rng(0).normal(0, 800, len(speech))).astype(np.int16)
    pcm = join(silence(0.8), speech + noise, silence(1))  # no pauses long enough to end it
    events = run(Segmenter(VadConfig()), pcm, arm_at=0.32)
    utts = [e for _, e in events if isinstance(e, Utterance)]
    assert len(utts) == 1
    assert utts[0].reason == "max_length"
    assert abs(utts[0].duration - 30.0) < 0.05
    assert utts[0].samples.dtype == np.int16


def test_cap_is_configurable() -> None:
    cfg = dataclasses.replace(VadConfig(), max_utterance_s=5.0)
    speech = np.random.default_rng(1).normal(0, 3000, 12 * RATE).astype(np.int16)
    events = run(Segmenter(cfg), join(silence(0.8), speech), arm_at=0.32)
    utt = [e for _, e in events if isinstance(e, Utterance)][0]
    assert utt.reason == "max_length" and abs(utt.duration - 5.0) < 0.05


def test_silence_after_the_wake_word_times_out() -> None:
    events = run(Segmenter(VadConfig(listen_timeout_s=3.0)), join(silence(6.0)), arm_at=0.8)
    assert [type(e) for _, e in events] == [TimedOut]
    t, timeout = events[0]
    assert abs(timeout.waited - 3.0) < 0.05 and abs(t - 3.8) < 0.1


def test_unfinished_speech_is_handed_over_at_end_of_input() -> None:
    seg = Segmenter(VadConfig())
    run(seg, join(silence(0.8), espeak("this sentence never ends because the input")), arm_at=0.32)
    utt = seg.finish()
    assert utt is not None and utt.reason == "end_of_input" and utt.duration > 1.0
    assert seg.finish() is None


VOICES = [("jf_alpha", 0.8), ("jm_kumo", 1.0), ("en-us+m3", 150), ("en-gb+f2", 175), ("en-gb-x-rp+f4", 140)]


@pytest.mark.parametrize("voice", VOICES, ids=[f"{v}@{s}" for v, s in VOICES])
def test_pauses_shorter_than_the_hangover_never_end_the_utterance(voice: tuple[str, float]) -> None:
    """Commas, "um" and breaths: 200–450 ms pauses inside a sentence, with the 500 ms hangover."""
    parts = [trim(say(t, voice)) for t in ("I was thinking", "um", "maybe we could go", "tomorrow")]
    for pause in (0.2, 0.35, 0.45):
        gaps = [silence(pause)] * len(parts)
        said = np.concatenate([x for pair in zip(parts, gaps, strict=True) for x in pair][:-1])
        utts = [e for _, e in run(Segmenter(VadConfig()), join(silence(0.8), said, silence(2.0)), arm_at=0.32)
                if isinstance(e, Utterance)]
        assert len(utts) == 1 and utts[0].reason == "silence", f"a {pause * 1000:.0f} ms pause ended it"
        assert utts[0].duration >= len(said) / RATE


@pytest.mark.parametrize("voice", VOICES, ids=[f"{v}@{s}" for v, s in VOICES])
def test_a_soft_ending_is_not_clipped(voice: tuple[str, float], whisper: WhisperTranscriber) -> None:
    said = trim(say("And the answer was yes", voice))
    (utt,) = [e for _, e in run(Segmenter(VadConfig()), join(silence(0.8), said, silence(2.0)), arm_at=0.32)
              if isinstance(e, Utterance)]
    assert utt.end >= 0.8 + len(said) / RATE + 0.3  # every sample of the last word, and silence after it
    heard = words(whisper.transcribe(join(silence(0.3), said, silence(1.0))))  # what Whisper makes of it
    assert words(whisper.transcribe(utt.samples))[-1] == heard[-1]


def woken(pcm: np.ndarray, fire_at: float) -> list[object]:
    """Feed pcm frame by frame, the wake word detected at fire_at seconds; every event (Midway included)."""
    seg = Segmenter(VadConfig())
    events = []
    for i in range(0, len(pcm), FRAME):
        chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
        events += seg.feed(chunk)
        if abs(chunk.end - fire_at) < 1e-6:
            events += seg.arm_after_wake(chunk.end)
    return events


def test_after_a_late_wake_word_the_utterance_starts_before_the_phrase() -> None:
    """The detection lands 300 ms into the request: the request's first word is still in the utterance."""
    wake, request = trim(say("Hey Jarvis.", ("jm_kumo", 1.0))), trim(say("Please wake me up.", ("jm_kumo", 1.0)))
    pcm = join(silence(1.0), wake, silence(0.1), request, silence(2.0))
    phrase_start = 1.0
    request_start = 1.0 + (len(wake) + 1600) / RATE
    fire_at = np.ceil((request_start + 0.3) * RATE / FRAME) * FRAME / RATE
    events = woken(pcm, fire_at)
    (started,) = [e for e in events if isinstance(e, Started)]
    (utt,) = [e for e in events if isinstance(e, Utterance)]
    assert phrase_start - 0.35 <= utt.start <= phrase_start  # from the pause before the phrase …
    assert utt.start == started.start and utt.wake_at == pytest.approx(fire_at)
    assert utt.end >= request_start + len(request) / RATE  # … to the end of the request


@pytest.mark.parametrize("voice", [("jf_alpha", 1.0), ("en-gb+f2", 160)], ids=["jf_alpha", "en-gb+f2@160"])
def test_after_a_wake_word_the_looks_count_from_the_detection(voice: tuple[str, float]) -> None:
    """The utterance holds the wake phrase, but a look that heard only the phrase would learn nothing: the first
    Midway comes 1 s after the detection (so it hears the request's first words), the next every 1.5 s."""
    wake = trim(say("Hey Jarvis.", voice))
    request = trim(say("Could you tell me how long the drive to the coast takes if we leave early on Saturday?",
                       voice))
    pcm = join(silence(1.0), wake, silence(0.3), request, silence(2.0))
    fire_at = np.ceil((1.0 + len(wake) / RATE + 0.15) * RATE / FRAME) * FRAME / RATE  # just after the phrase
    events = woken(pcm, fire_at)
    (utt,) = [e for e in events if isinstance(e, Utterance)]
    reached = [e.utterance.start + len(e.utterance.samples) / RATE for e in events if isinstance(e, Midway)]
    assert utt.start < 1.0 and len(reached) == int((utt.speech_end - fire_at) * 1000 - WAKE_LOOK_MS) // LOOK_MS + 1
    for n, t in enumerate(reached):
        due = (WAKE_LOOK_MS + n * LOOK_MS) / 1000
        assert due <= t - fire_at < due + 0.5 and len(reached) >= 2


def test_listening_again_from_the_past_replays_what_was_said_since() -> None:
    """After a transcript held only the wake phrase, listening resumes from where that utterance ended."""
    said = espeak("what is on my calendar today")
    pcm = join(silence(1.0), said, silence(2.0))
    seg = Segmenter(VadConfig())
    events = []
    for i in range(0, len(pcm), FRAME):
        chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
        events += seg.feed(chunk)
        if abs(chunk.end - 1.6) < 1e-6:  # the user is already 0.6 s into the sentence
            events += seg.arm(0.8)
    (started,) = [e for e in events if isinstance(e, Started)]
    (utt,) = [e for e in events if isinstance(e, Utterance)]
    lead = 1.0 + speech_bounds(said)[0]
    assert lead - 0.35 <= started.start <= lead
    assert utt.duration >= speech_bounds(said)[1] - speech_bounds(said)[0] and utt.wake_at is None


@pytest.mark.parametrize("voice", [("jm_kumo", 1.0), ("en-gb+f2", 175), ("en-us+m3", 130)],
                         ids=["jm_kumo", "en-gb+f2@175", "en-us+m3@130"])
def test_while_the_user_speaks_what_they_said_so_far_is_handed_on(voice: tuple[str, float]) -> None:
    """Midway every 1.5 s of an utterance in progress, never in a pause or after the end; each a start of the
    utterance it becomes (so memories can be recalled and prefilled before the user finishes)."""
    first, second = (trim(say(t, voice)) for t in ("Could you tell me how long the drive to the coast takes",
                                                  "if we leave early on Saturday morning with the kids"))
    pcm = join(silence(0.8), first, silence(0.35), second, silence(2.0))
    events = run(Segmenter(VadConfig()), pcm, arm_at=0.32, pauses=True, midway=True)
    (utt,) = [e for _, e in events if isinstance(e, Utterance)]
    looks = [(t, e.utterance) for t, e in events if isinstance(e, Midway)]
    assert len(looks) == int((utt.speech_end - utt.start) * 1000 // LOOK_MS)  # one each 1.5 s of speech …
    for n, (t, so_far) in enumerate(looks, 1):
        assert n * LOOK_MS / 1000 <= so_far.duration < n * LOOK_MS / 1000 + 0.5  # … soon after it is reached
        assert so_far.start == utt.start and np.array_equal(so_far.samples, utt.samples[: len(so_far.samples)])
        assert t <= utt.speech_end  # while they still speak
    paused = [t for t, e in events if isinstance(e, Paused)]
    resumed = [t for t, e in events if isinstance(e, Resumed)]
    assert not any(p < t < r for t, _ in looks for p, r in zip(paused, resumed))  # none inside a pause
    short = run(Segmenter(VadConfig()), join(silence(0.8), trim(say("Thanks", voice)), silence(2.0)), arm_at=0.32,
                midway=True)
    assert not [e for _, e in short if isinstance(e, Midway)]  # a short answer has none
