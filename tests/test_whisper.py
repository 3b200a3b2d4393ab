"""Transcription with the real whisper-base."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_damaged_model_is_a_clear_error(tmp_path: Path, kit: Path) -> None:
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_bytes((kit / "whisper-base" / name).read_bytes())
    (folder / "model.bin").write_bytes(b"not a model")
    from os1d.errors import UserError

    with pytest.raises(UserError, match=r"cannot be loaded .*os1d models pull whisper-base --force"):
        WhisperTranscriber(folder, SttConfig())
