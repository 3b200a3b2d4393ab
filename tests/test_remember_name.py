"""The defining moment: tell OS1 your name today; after a restart it greets you by name and, asked, recalls it.

Session one is a real `os1d run` on a recording; session two runs in-process so the prompt can be read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import KIT_CONFIG, events_of, run_os1d
from harness import kit_config, run_listener
from os1d.agent.prompt import Message
from os1d.agent.ultravox import Ultravox
from os1d.audio.chunk import write_wav
from os1d.config import ConversationConfig, MemoryConfig
from os1d.events import Greeting, Recalled, Transcript
from speech import espeak, join, kokoro, silence
from wake_requests import say, trim

CASES = [  # (how the wake phrase and the introduction are said, the name)
    pytest.param(lambda: join(espeak("hey jarvis", "en-gb+m3", 150), silence(0.3),
                              kokoro("My name is Anna, and I write letters for other people.", "jm_kumo")),
                 "Anna", id="espeak-wake-then-kokoro"),
    pytest.param(lambda: trim(say("Hey Jarvis, I'm Samantha, and I just moved here.", ("jf_nezumi", 1.0))),
                 "Samantha", id="one-breath-kokoro"),
]


@pytest.mark.parametrize("introduction, name", CASES)
def test_a_name_told_today_is_known_after_a_restart(introduction, name: str, user_env: dict[str, str],  # type: ignore[no-untyped-def]
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Path(user_env["XDG_CONFIG_HOME"]) / "os1d" / "config.toml"
    config.write_text(KIT_CONFIG.replace("greet = false", "greet = true"))
    write_wav(tmp_path / "one.wav", join(silence(8.0), introduction(), silence(2.0)))
    first = run_os1d(["run", "--no-tray", "--input-file", str(tmp_path / "one.wav"), "--fast", "--events", "-"],
                     user_env)
    assert first.returncode == 0, first.stderr
    events = events_of(first.stdout)
    hello = next(e for e in events if e["event"] == "Greeting")
    assert hello["first_time"] and hello["name"] == "" and "OS1" in hello["text"]
    said = next(e for e in events if e["event"] == "Transcript")["text"]
    assert name in said, said
    assert any(e["event"] == "Remembered" and e["ids"] for e in events)
    listed = run_os1d(["memories", "list", "--json"], user_env)
    assert listed.returncode == 0, listed.stderr
    facts = {m["fact"]: m["text"] for m in json.loads(listed.stdout) if m["fact"]}
    assert facts["name"] == f"My name is {name}."

    # the next day: a new process, the same memory folder
    prompts: list[list[Message]] = []
    real = Ultravox.stream

    def stream(self, messages, *args, **kwargs):  # type: ignore[no-untyped-def]
        prompts.append(list(messages))
        return real(self, messages, *args, **kwargs)

    monkeypatch.setattr(Ultravox, "stream", stream)
    memory = Path(user_env["XDG_DATA_HOME"]) / "os1d" / "memory"
    assert (memory / "memory.db").is_file()
    question = join(silence(10.0), espeak("hey jarvis", "en-us+f2", 160), silence(0.4),
                    kokoro("Do you remember my name?", "jf_alpha"), silence(3.0))
    cfg = kit_config(memory=MemoryConfig(dir=str(memory)), conversation=ConversationConfig(greet=True))
    run = run_listener(question, cfg)
    assert run.failure is None, run.failure
    (greeting,) = run.of(Greeting)
    assert not greeting.first_time and greeting.name == name and name in greeting.text
    assert "remember" in run.of(Transcript)[0].text.lower()
    (recalled,) = run.of(Recalled)
    assert recalled.memories[0]["text"] == f"My name is {name}."
    note = prompts[-1][-2]  # the memories, just before the user's turn (the persona before them stays cached)
    assert note.role == "system" and f"My name is {name}." in note.text and prompts[-1][-1].audio


ANSWERS = [  # the first greeting asks "What should I call you?"; the user answers without the wake word
    pytest.param(lambda: kokoro("Michael, nice to meet you.", "jm_kumo"), "Michael", id="name-then-more-kokoro"),
    pytest.param(lambda: espeak("Um, David.", "en-gb+f2", 150), "David", id="um-name-espeak"),
    pytest.param(lambda: kokoro("It's Anna.", "jf_gongitsune"), "Anna", id="its-name-kokoro"),
    pytest.param(lambda: espeak("What time is it?", "en-us+m3", 160), "", id="not-a-name-espeak"),
]


@pytest.mark.parametrize("answer, name", ANSWERS)
def test_a_name_said_alone_in_answer_to_the_first_greeting_is_known_after_a_restart(  # type: ignore[no-untyped-def]
        answer, name: str, tmp_path: Path) -> None:
    cfg = kit_config(memory=MemoryConfig(dir=str(tmp_path / "memory")), conversation=ConversationConfig(greet=True))
    first = run_listener(join(silence(7.5), answer(), silence(3.0)), cfg)  # the greeting takes the first 6 s
    assert first.failure is None, first.failure
    (hello,) = first.of(Greeting)
    assert hello.first_time and hello.text.endswith("What should I call you?")
    (heard,) = first.of(Transcript)  # a turn without the wake word: the follow-up after the greeting
    assert name in heard.text
    again = run_listener(silence(1.0), cfg)
    (hello,) = again.of(Greeting)
    assert not hello.first_time and hello.name == name and name in hello.text
