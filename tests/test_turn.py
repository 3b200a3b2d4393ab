"""The conversation turn: events, overlap of Whisper and the encoder, history, and cancellation."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import events_of, run_os1d
from os1d.agent.prompt import PERSONA, Message, build_messages, llama3_prompt, system_prompt
from os1d.agent.turn import Conversation, Lanes
from os1d.agent.ultravox import Trace, Ultravox
from os1d.agent.whisper import WhisperTranscriber
from os1d.audio.chunk import write_wav
from os1d.config import Config, SttConfig, parse_config
from os1d.pipeline import Lane
from speech import REPO, espeak, join, kokoro, silence

sys.path.insert(0, str(REPO / "scripts"))
from ultravox_standin import SENTENCE  # noqa: E402


def test_spoken_turn_end_to_end(tmp_path: Path, user_env: dict[str, str]) -> None:
    pcm = join(silence(1.0), espeak("hey jarvis"), silence(0.3), kokoro("My name is Alice and I live in Paris."),
               silence(2.0))
    write_wav(tmp_path / "in.wav", pcm)
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast", "--events", "-"],
                      user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    names = [e["event"] for e in events]
    assert names.index("Transcript") < names.index("ReplyDelta") < names.index("ReplyDone") < names.index("TurnMetrics")
    deltas = [e["text"] for e in events if e["event"] == "ReplyDelta"]
    done = next(e for e in events if e["event"] == "ReplyDone")
    assert "".join(deltas) == done["text"] == SENTENCE and not done["interrupted"]
    m = next(e for e in events if e["event"] == "TurnMetrics")
    assert 400 <= m["endpoint"] <= 800  # the 500 ms hangover, give or take a frame
    assert m["stt"] > 0 and m["recall"] >= 0 and m["llm_first_token"] > 0 and m["tts_first_audio"] is None
    assert m["total"] == pytest.approx(m["endpoint"] + m["llm_first_token"], abs=0.2)
    assert m["parallel"] > 0.5 * m["audio_encoder"]  # Whisper and the encoder ran at the same time
    assert "os1: " + SENTENCE in result.stderr


@pytest.fixture(scope="module")
def endless(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> Ultravox:
    """The stand-in with <|eot_id|> no longer a stop id: it talks until max_new_tokens."""
    folder = tmp_path_factory.mktemp("endless") / "ultravox"
    shutil.copytree(kit / "ultravox", folder)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001]}))
    return Ultravox(folder)


class Traced:
    """The model, recording its steps and how many had run when the turn asked it to stop."""

    def __init__(self, model: Ultravox) -> None:
        self.model, self.trace, self.steps_at_cancel = model, Trace(), -1

    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        return self.model.prepare_audio(samples)

    def stream(self, messages, audio, sampling, cancel=None):  # type: ignore[no-untyped-def]
        outer = self

        class Noted(threading.Event):
            def set(self) -> None:
                outer.steps_at_cancel = len(outer.trace.past_lengths)
                super().set()

        noted = Noted()
        threading.Thread(target=lambda: (cancel.wait(), noted.set()), daemon=True).start()
        ids = self.model.tokenize(llama3_prompt(messages, 0 if audio is None else len(audio)))
        return self.model.generate(ids, audio, sampling, noted, self.trace)


def conversation(cfg: Config, stt: object, llm: object, events: list) -> tuple[Conversation, list[Lane]]:
    lanes = [Lane("stt"), Lane("llm")]

    async def ready(x: object) -> object:
        return x

    conv = Conversation(cfg, Lanes(lanes[0].run, lanes[1].run, asyncio.ensure_future(ready(stt)),
                                   asyncio.ensure_future(ready(llm))), events.append, lambda: 0.0)
    return conv, lanes


def test_cancel_mid_reply_stops_generation_and_notes_the_interruption(endless: Ultravox) -> None:
    cfg = parse_config({"llm": {"max_new_tokens": 3000}})
    llm, events = Traced(endless), []

    async def scenario() -> None:
        conv, lanes = conversation(cfg, None, llm, events)
        task = asyncio.ensure_future(conv.text_turn("Tell me everything."))
        while sum(e.__class__.__name__ == "ReplyDelta" for e in events) < 5:
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conv.history[-1].role == "assistant" and conv.history[-1].text.endswith(" …")
        for lane in lanes:
            lane.close()

    asyncio.run(scenario())
    steps = len(llm.trace.past_lengths)
    assert 5 <= steps < 3000
    assert 0 <= steps - llm.steps_at_cancel <= 1  # token production stopped within one step
    done = [e for e in events if e.__class__.__name__ == "ReplyDone"]
    assert len(done) == 1 and done[0].interrupted


def test_history_keeps_the_last_messages_and_typed_turns_use_text(kit: Path) -> None:
    cfg = parse_config({"conversation": {"history": 4}})
    llm, events = Traced(Ultravox(kit / "ultravox")), []

    async def scenario() -> Conversation:
        conv, lanes = conversation(cfg, None, llm, events)
        for q in ("one", "two", "three"):
            assert await conv.text_turn(q) == SENTENCE
        for lane in lanes:
            lane.close()
        return conv

    conv = asyncio.run(scenario())
    assert [m.text for m in conv.history] == ["two", SENTENCE, "three", SENTENCE]
    assert [e.__class__.__name__ for e in events].count("TurnMetrics") == 3


def test_audio_turn_history_holds_the_transcript(kit: Path) -> None:
    stt = WhisperTranscriber(kit / "whisper-base", SttConfig())
    llm, events = Traced(Ultravox(kit / "ultravox")), []

    async def scenario() -> Conversation:
        conv, lanes = conversation(Config(), stt, llm, events)
        await conv.audio_turn(kokoro("I love hiking in the mountains."), endpoint_ms=500.0)
        for lane in lanes:
            lane.close()
        return conv

    conv = asyncio.run(scenario())
    assert "hiking" in conv.history[0].text.lower() and conv.history[1].text == SENTENCE
    assert llm.trace.merged_rows is not None  # the audio, not the transcript, went to the model


def test_prompt_format_and_persona() -> None:
    history = [Message("user", f"q{i}") if i % 2 == 0 else Message("assistant", f"a{i}") for i in range(14)]
    messages = build_messages(history, Message("user", "", audio=True), ["Your name is Alice."], keep=10)
    assert messages[0].role == "system" and "Your name is Alice." in messages[0].text
    assert [m.text for m in messages[1:-1]] == [f"q{i}" if i % 2 == 0 else f"a{i}" for i in range(4, 14)]
    text = llama3_prompt(messages, audio_rows=3)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert text.endswith("<|start_header_id|>user<|end_header_id|>\n\n<|audio|><|audio|><|audio|><|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert system_prompt([]) == PERSONA
    for rule in ("markdown", "emoji", "Never invent memories", "last message"):
        assert rule in PERSONA


def test_stopping_the_daemon_mid_reply_interrupts_it_cleanly(tmp_path: Path, user_env: dict[str, str],
                                                             kit: Path) -> None:
    import signal
    import subprocess
    import time

    from conftest import OS1D

    models = tmp_path / "models"
    models.mkdir()
    for name in ("openwakeword", "whisper-base"):
        (models / name).symlink_to(kit / name)
    shutil.copytree(kit / "ultravox", models / "ultravox")
    (models / "ultravox" / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001]}))
    from os1d.models import read_manifest, write_manifest

    write_manifest(models / "ultravox", list(read_manifest(models / "ultravox")))
    config = tmp_path / "config.toml"
    config.write_text("[llm]\nmax_new_tokens = 8000\n")
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis"), silence(0.3), kokoro("Talk to me."),
                                        silence(30.0)))
    proc = subprocess.Popen(OS1D + ["--config", str(config), "run", "--no-tray", "--input-file",
                                    str(tmp_path / "in.wav"), "--events", "-"],
                            env=dict(user_env, OS1D_MODELS_DIR=str(models)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if '"ReplyDelta"' in line:
                break
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 5  # not the 8000 tokens it was going to say
    done = [e for e in events_of(out) if e["event"] == "ReplyDone"]
    assert len(done) == 1 and done[0]["interrupted"] and done[0]["text"].startswith("Hello")
