"""Utterance segmentation: boundaries, pre-roll, hangover, the 30 s cap, timeouts."""

from __future__ import annotations

import dataclasses

import numpy as np

from os1d.audio.chunk import FRAME, RATE, AudioChunk
from os1d.audio.vad import Segmenter, Started, TimedOut, Utterance
from os1d.config import VadConfig
from speech import espeak, join, silence, speech_bounds


def run(seg: Segmenter, pcm: np.ndarray, arm_at: float = 0.0) -> list[tuple[float, object]]:
    """Feed pcm frame by frame, arming at arm_at seconds; return (time, event) pairs."""
    out: list[tuple[float, object]] = []
    for i in range(0, len(pcm), FRAME):
        chunk = AudioChunk(pcm[i : i + FRAME], i / RATE)
        events = seg.feed(chunk)
        if seg.active or events:
            out += [(chunk.end, e) for e in events]
        if not seg.active and abs(chunk.end - arm_at) < 1e-6:
            out += [(chunk.end, e) for e in seg.arm(chunk.end)]
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
    assert tail - 0.05 <= end_of_audio <= tail + 0.45  # a 300 ms tail keeps soft final sounds
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
