"""The conversation turn: events, overlap of Whisper and the encoder, history, and cancellation."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import KIT_CONFIG, Heard, events_of, run_os1d
from os1d.agent.conversation import Conversation
from os1d.agent.precache import Precache
from os1d.agent.hearing import Hearing, choose
from os1d.agent.prompt import PERSONA, Message, build_messages, llama3_prompt, system_prompt
from os1d.agent.turn import Lanes, Request, Turn
from os1d.agent.ultravox import Sampling, Trace, Ultravox
from os1d.agent.wake_phrase import remove_wake_phrase
from os1d.agent.whisper import WhisperTranscriber
from os1d.audio.chunk import read_wav, write_wav
from os1d.config import Config, parse_config
from os1d.lanes import Lane
from speech import REPO, espeak, join, kokoro, silence, words

sys.path.insert(0, str(REPO / "scripts"))
from ultravox_standin import SENTENCE  # noqa: E402


def test_spoken_turn_end_to_end(tmp_path: Path, user_env: dict[str, str], whisper: WhisperTranscriber) -> None:
    pcm = join(silence(1.0), espeak("hey jarvis"), silence(0.3), kokoro("My name is Alice and I live in Paris."),
               silence(2.0))
    write_wav(tmp_path / "in.wav", pcm)
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast", "--events", "-",
                       "--output-file", str(tmp_path / "out.wav")], user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    names = [e["event"] for e in events]
    assert names.index("SpeechEnded") < names.index("Transcript") < names.index("ReplyDelta") \
        < names.index("ReplyDone") < names.index("TurnMetrics")
    assert names.index("SpeechEnded") < names.index("SpeakingStarted") < names.index("SpeakingStopped")
    assert next(e for e in events if e["event"] == "SpeakingStopped")["reason"] == "done"
    deltas = [e["text"] for e in events if e["event"] == "ReplyDelta"]
    done = next(e for e in events if e["event"] == "ReplyDone")
    assert "".join(deltas) == done["text"] == SENTENCE and not done["interrupted"]
    m = next(e for e in events if e["event"] == "TurnMetrics")
    assert 400 <= m["endpoint"] <= 800  # the 500 ms hangover, give or take a frame
    assert m["stt"] > 0 and m["recall"] >= 0 and m["llm_first_token"] > 0 and m["tts_first_audio"] > 0
    assert m["total"] >= m["endpoint"]
    assert m["audio_encoder"] > 0 and m["parallel"] is not None  # (their overlap: test_whisper_runs_beside_...)
    assert m["cached_tokens"] > 200 and 0 < m["prefill_tokens"] < m["cached_tokens"]  # the persona: run ahead
    states = [e["state"] for e in events if e["event"] == "StateChanged"]
    assert states == ["starting", "idle", "listening", "thinking", "speaking", "listening", "idle"]
    assert "os1: " + SENTENCE in result.stderr
    spoken = read_wav(tmp_path / "out.wav")  # what OS1 said, on the input's timeline
    start = next(e for e in events if e["event"] == "SpeakingStarted")["t"]
    loud = np.flatnonzero(np.abs(spoken.astype(np.int32)) > 300) / 16000
    assert start - 0.1 <= loud[0] <= start + 0.5
    assert words(whisper.transcribe(spoken[int(start * 16000):]))[:4] == ["hello", "from", "the", "tiny"]


def test_text_mode_end_to_end(tmp_path: Path, user_env: dict[str, str]) -> None:
    write_wav(tmp_path / "in.wav", join(silence(1.0), espeak("hey jarvis", "en-us+f4"), silence(0.3),
                                        kokoro("What time does the bakery open?", "jm_kumo"), silence(2.0)))
    config = Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml"
    config.write_text(KIT_CONFIG + '[llm]\ninput = "text"\n')
    result = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "in.wav"), "--fast", "--events", "-"],
                      user_env)
    assert result.returncode == 0, result.stderr
    events = events_of(result.stdout)
    assert "the speech LLM hears Whisper's transcript (text): llm.input = text" in result.stderr
    assert "bakery" in next(e for e in events if e["event"] == "Transcript")["text"].lower()
    assert next(e for e in events if e["event"] == "ReplyDone")["text"] == SENTENCE
    m = next(e for e in events if e["event"] == "TurnMetrics")
    assert m["audio_encoder"] is None and m["stt"] > 0 and m["llm_first_token"] > 0


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
        self.encoded = False
        self.prompts: list[str] = []

    @property
    def hearing(self) -> Hearing:
        return self.model.hearing

    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        self.encoded = True
        return self.model.prepare_audio(samples)

    def stream(self, messages, audio, sampling, cancel=None, usage=None, draft=""):  # type: ignore[no-untyped-def]
        outer = self

        class Noted(threading.Event):
            def set(self) -> None:
                outer.steps_at_cancel = len(outer.trace.past_lengths)
                super().set()

        noted = Noted()
        threading.Thread(target=lambda: (cancel.wait(), noted.set()), daemon=True).start()
        self.prompts.append(llama3_prompt(messages, 0 if audio is None else len(audio)))
        ids = self.model.tokenize(self.prompts[-1])
        draft_ids = self.model.tokenizer.encode(draft, add_special_tokens=False) if draft else []
        return self.model.generate(ids, audio, sampling, noted, self.trace, usage, draft_ids)


class Harness:
    """Real lanes and a conversation; turns are run committed, text only (no voice)."""

    def __init__(self, cfg: Config, stt: object, llm: object, events: list) -> None:
        self.cfg, self.events = cfg, events
        self.lanes = [Lane("stt"), Lane("llm"), Lane("tts")]
        self.conv = Conversation(cfg)
        self._stt, self._llm = stt, llm

    def turn(self, request: Request) -> Turn:
        async def ready(x: object) -> object:
            return x

        lanes = Lanes(self.lanes[0].run, self.lanes[1].run, self.lanes[2].run, asyncio.ensure_future(ready(self._stt)),
                      asyncio.ensure_future(ready(self._llm)))
        llm = self.cfg.llm
        turn = Turn(request, self.conv, lanes, self.events.append, lambda: 0.0, None,
                    Sampling(llm.max_new_tokens, llm.temperature, llm.top_p))
        turn.start()
        turn.commit(0.0)
        return turn

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()


def test_cancel_mid_reply_stops_generation_and_notes_the_interruption(endless: Ultravox) -> None:
    cfg = parse_config({"llm": {"max_new_tokens": 3000}})
    llm, events = Traced(endless), []

    async def scenario() -> None:
        h = Harness(cfg, None, llm, events)
        turn = h.turn(Request(text="Tell me everything."))
        while sum(e.__class__.__name__ == "ReplyDelta" for e in events) < 5:
            await asyncio.sleep(0.001)
        turn.interrupt()
        with pytest.raises(asyncio.CancelledError):
            await turn.task
        assert h.conv.history[-1].role == "assistant" and h.conv.history[-1].text.endswith(" …")
        h.close()

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
        h = Harness(cfg, None, llm, events)
        for q in ("one", "two", "three"):
            assert await h.turn(Request(text=q)).task == SENTENCE
        assert [m.text for m in h.conv.history] == ["three", SENTENCE]  # past 4 messages: the oldest half went
        assert await h.turn(Request(text="four")).task == SENTENCE
        h.close()
        return h.conv

    conv = asyncio.run(scenario())
    assert [m.text for m in conv.history] == ["three", SENTENCE, "four", SENTENCE]
    metrics = [e for e in events if e.__class__.__name__ == "TurnMetrics"]
    assert len(metrics) == 4 and metrics[0].cached_tokens == 0
    assert metrics[1].cached_tokens > metrics[1].prefill_tokens  # the persona and more came from the cache


def test_between_turns_the_history_is_prefilled_and_a_turn_runs_only_its_new_words(kit: Path) -> None:
    """As the daemon wires it: each change of the history prefills the next prompt's start in the LLM lane."""
    model, events, stable = Ultravox(kit / "ultravox"), [], []

    async def scenario() -> int:
        h = Harness(Config(), None, model, events)
        lanes = h.turn(Request(text="one")).lanes
        await asyncio.wait([t for t in asyncio.all_tasks() if t is not asyncio.current_task()])
        ahead = h.conv.on_history = Precache(lanes, h.conv.stable_messages)
        h.conv.on_history()
        for q in ("two", "three"):
            await ahead.task
            stable.append(len(model.tokenize(llama3_prompt(h.conv.stable_messages(), reply=False))[0]))
            await h.turn(Request(text=q)).task
        await ahead.task
        tokens = ahead.tokens
        assert len(model._prefixes[0].ids) > stable[-1]  # the conversation is in the model's cache …
        h.conv.history.clear()  # … until everything is forgotten (as Conversation.forget_everything does)
        h.conv.on_history(forgotten=True)
        await ahead.task
        h.close()
        return tokens

    ahead = asyncio.run(scenario())
    metrics = [e for e in events if e.__class__.__name__ == "TurnMetrics"]
    assert [m.cached_tokens for m in metrics[1:]] == stable  # persona and history: all prefilled ahead
    assert all(m.prefill_tokens <= 12 for m in metrics[1:])  # left for the turn: its header, the words, the reply's
    assert 0 < ahead < stable[-1]  # only what no earlier prompt had in its cache was run ahead
    persona = len(model.tokenize(llama3_prompt([Message("system", system_prompt())], reply=False))[0])
    assert [len(p.ids) for p in model._prefixes] == [persona]  # nothing of the forgotten words is kept


def test_audio_turn_history_holds_the_transcript(kit: Path, whisper: WhisperTranscriber) -> None:
    llm, events = Traced(Ultravox(kit / "ultravox")), []

    async def scenario() -> Conversation:
        h = Harness(Config(), whisper, llm, events)
        await h.turn(Request(kokoro("I love hiking in the mountains."), speech_end=0.0)).task
        h.close()
        return h.conv

    conv = asyncio.run(scenario())
    assert "hiking" in conv.history[0].text.lower() and conv.history[1].text == SENTENCE
    assert llm.trace.merged_rows is not None  # the audio, not the transcript, went to the model


class SlowEncoder(Traced):
    """The stand-in's encoder (12 ms) taking as long as the full-size one does on this machine (0.5 s)."""

    def prepare_audio(self, samples: np.ndarray) -> np.ndarray:
        time.sleep(0.5)
        return super().prepare_audio(samples)


@pytest.mark.parametrize("voice", ["kokoro", "espeak"])
def test_whisper_runs_beside_the_audio_encoder(kit: Path, whisper: WhisperTranscriber, voice: str) -> None:
    said = kokoro("I love hiking in the mountains.") if voice == "kokoro" else espeak("Where is the nearest train "
                                                                                     "station?", "en-us+f2")
    llm, events = SlowEncoder(Ultravox(kit / "ultravox")), []

    async def scenario() -> None:
        h = Harness(Config(), whisper, llm, events)
        await h.turn(Request(said, speech_end=0.0)).task
        h.close()

    asyncio.run(scenario())
    m = next(e for e in events if e.__class__.__name__ == "TurnMetrics")
    assert m.audio_encoder >= 500 and m.stt > 0
    assert m.parallel >= 0.5 * min(m.stt, m.audio_encoder)  # one after the other would give 0


def test_in_text_mode_the_model_hears_the_transcript_and_the_encoder_never_runs(kit: Path, tmp_path: Path,
                                                                                whisper: WhisperTranscriber) -> None:
    model = Ultravox(kit / "ultravox")
    model.hearing = choose(parse_config({"llm": {"input": "text"}}).llm, model.encode_audio)
    assert model.hearing == Hearing("text", "llm.input = text")
    llm, events = Traced(model), []

    async def scenario() -> Conversation:
        h = Harness(Config(), whisper, llm, events)
        h.conv.clean = lambda text: remove_wake_phrase(text, ["hey_jarvis"])  # as the assistant sets it
        said = join(espeak("hey jarvis", "en-gb+m3"), silence(0.3), kokoro("I love hiking in the mountains."))
        await h.turn(Request(said, hint="hey jarvis", speech_end=0.0, wake_at=0.5)).task
        h.close()
        return h.conv

    conv = asyncio.run(scenario())
    assert not llm.encoded and llm.trace.merged_rows is None and "<|audio|>" not in llm.prompts[0]
    user = llm.prompts[0].rsplit("<|start_header_id|>user<|end_header_id|>\n\n", 1)[1].split("<|eot_id|>")[0]
    assert "hiking" in user.lower() and "jarvis" not in user.lower()  # the words, without the wake phrase
    assert conv.history[0].text == user and conv.history[1].text == SENTENCE
    metrics = next(e for e in events if e.__class__.__name__ == "TurnMetrics")
    assert metrics.audio_encoder is None and metrics.stt > 0


def test_auto_mode_weighs_the_encoder_against_its_budget(kit: Path) -> None:
    model = Ultravox(kit / "ultravox")
    slow = choose(parse_config({"llm": {"encoder_budget_ms": 0}}).llm, model.encode_audio)
    assert slow.mode == "text" and "over llm.encoder_budget_ms = 0" in slow.why
    fast = choose(parse_config({"llm": {"encoder_budget_ms": 60000}}).llm, model.encode_audio)
    assert fast.mode == "audio" and "within llm.encoder_budget_ms = 60000" in fast.why
    assert choose(parse_config({"llm": {"input": "audio", "encoder_budget_ms": 0}}).llm, model.encode_audio).mode \
        == "audio"


def test_a_dropped_turn_never_cancels_a_model_still_loading(kit: Path) -> None:
    """A turn started at a pause and dropped (the user went on) while Kokoro still loads: the load goes on, and
    the next turn speaks (before, the dropped turn cancelled the load and every later turn ended silently)."""
    from os1d.audio.tts import KokoroVoice
    from os1d.config import TtsConfig

    heard = Heard()
    async def scenario() -> None:
        lanes = [Lane("stt"), Lane("llm"), Lane("tts")]
        llm = asyncio.ensure_future(lanes[1].run(Ultravox, kit / "ultravox"))
        conv = Conversation(Config())
        try:
            await asyncio.wait([llm])
            voice = asyncio.ensure_future(lanes[2].run(KokoroVoice, kit / "kokoro", TtsConfig(voice="jf_alpha")))

            def turn(text: str) -> Turn:
                both = Lanes(lanes[0].run, lanes[1].run, lanes[2].run, llm, llm, voice)  # (no audio: no Whisper)
                return Turn(Request(text=text), conv, both, lambda e: None, lambda: 0.0, heard, Sampling())

            dropped = turn("What is")
            dropped.start()
            await asyncio.sleep(0.05)  # (it waits for the voice now)
            assert not voice.done()  # Kokoro still loading
            dropped.interrupt(None)
            await asyncio.wait([dropped.task])
            assert not voice.cancelled()
            spoken = turn("What is the capital of France?")
            spoken.start()
            spoken.commit(0.0)
            assert await spoken.task == SENTENCE and heard.played and not voice.cancelled()
        finally:
            for lane in lanes:
                lane.close()

    asyncio.run(scenario())


def test_prompt_format_and_persona() -> None:
    history = [Message("user", f"q{i}") if i % 2 == 0 else Message("assistant", f"a{i}") for i in range(14)]
    messages = build_messages(history, Message("user", "", audio=True), ["Your name is Alice."], keep=10)
    assert messages[0] == Message("system", PERSONA)  # the same every turn: its cache is reused
    assert [m.text for m in messages[1:-2]] == [f"q{i}" if i % 2 == 0 else f"a{i}" for i in range(4, 14)]
    assert messages[-2].role == "system" and "- Your name is Alice." in messages[-2].text  # memories: last
    assert build_messages(history, Message("user", "hi"), [], keep=10)[-2].text == "a13"  # none: no note
    text = llama3_prompt(messages, audio_rows=3)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert text.endswith("<|start_header_id|>user<|end_header_id|>\n\n<|audio|><|audio|><|audio|><|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert system_prompt() == PERSONA
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
    for name in ("openwakeword", "whisper-base", "kokoro", "minilm"):
        (models / name).symlink_to(kit / name)
    shutil.copytree(kit / "ultravox", models / "ultravox")
    (models / "ultravox" / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001]}))
    from os1d.models import read_manifest, write_manifest

    write_manifest(models / "ultravox", list(read_manifest(models / "ultravox")))
    config = tmp_path / "config.toml"
    config.write_text(KIT_CONFIG + "[llm]\nmax_new_tokens = 8000\n")
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
