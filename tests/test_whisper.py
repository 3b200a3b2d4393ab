"""Transcription with the real whisper-base, and the wake phrase kept out of what the user said."""

from __future__ import annotations

from pathlib import Path

import pytest

from os1d.agent.wake_phrase import remove_wake_phrase
from os1d.agent.whisper import WhisperTranscriber, pick_device
from os1d.config import SttConfig
from speech import espeak, kokoro, words



def test_auto_picks_int8_on_cpu() -> None:
    assert pick_device("auto", "auto") == ("cpu", "int8")
    assert pick_device("cuda", "auto") == ("cuda", "float16")


def test_transcribes_kokoro_speech(whisper: WhisperTranscriber) -> None:
    text = whisper.transcribe(kokoro("The quick brown fox jumps over the lazy dog."))
    assert words(text) == "the quick brown fox jumps over the lazy dog".split()


def test_transcribes_espeak_speech(whisper: WhisperTranscriber) -> None:
    text = whisper.transcribe(espeak("my favourite colour is green"))
    assert {"favourite", "favorite"} & set(words(text)) and "green" in words(text)


@pytest.mark.parametrize(
    "heard, said",
    [
        ("Hey Jarvis, what time is it?", "What time is it?"),
        ("Jarvis. Turn off the lights.", "Turn off the lights."),
        ("hey jarvis", ""),
        ("What time is it, Jarvis?", "What time is it, Jarvis?"),
        ("Jarviston is a town.", "Jarviston is a town."),
    ],
)
def test_wake_phrase_is_removed_only_at_the_start(heard: str, said: str) -> None:
    assert remove_wake_phrase(heard, ["hey_jarvis"]) == said


def test_damaged_model_is_a_clear_error(tmp_path: Path, kit: Path) -> None:
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_bytes((kit / "whisper-base" / name).read_bytes())
    (folder / "model.bin").write_bytes(b"not a model")
    from os1d.errors import UserError

    with pytest.raises(UserError, match=r"cannot be loaded .*os1d models pull whisper-base --force"):
        WhisperTranscriber(folder, SttConfig())
