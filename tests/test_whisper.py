"""Transcription with the real whisper-base."""

from __future__ import annotations

from pathlib import Path

import pytest

from os1d.agent.whisper import WhisperTranscriber, pick_device
from os1d.config import SttConfig
from speech import espeak, join, kokoro, silence, words
from wake_requests import say, trim



def test_auto_picks_int8_on_cpu() -> None:
    assert pick_device("auto", "auto") == ("cpu", "int8")
    assert pick_device("cuda", "auto") == ("cuda", "float16")


def test_transcribes_kokoro_speech(whisper: WhisperTranscriber) -> None:
    text = whisper.transcribe(kokoro("The quick brown fox jumps over the lazy dog."))
    assert words(text) == "the quick brown fox jumps over the lazy dog".split()


def test_transcribes_espeak_speech(whisper: WhisperTranscriber) -> None:
    text = whisper.transcribe(espeak("my favourite colour is green"))
    assert {"favourite", "favorite"} & set(words(text)) and "green" in words(text)


def test_the_same_speech_gives_the_same_words_in_every_run(kit: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Whisper is unsure of a voice, it samples retries: two runs (two models loaded, as by two starts of
    the daemon) hearing the same requests twice each give the same words each time."""
    from faster_whisper import WhisperModel

    tried: list[float] = []  # the temperature of each transcript kept (above 0: a sampled retry)
    real = WhisperModel.generate_with_fallback

    def spied(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = real(self, *args, **kwargs)
        tried.append(result[2])
        return result

    monkeypatch.setattr(WhisperModel, "generate_with_fallback", spied)
    wake = espeak("hey jarvis", "en-us+f3", 165)
    clips = [join(silence(0.3), wake, silence(0.25), said, silence(0.4))
             for said in (kokoro("Turn off the lights.", "jf_alpha"), espeak("Turn off the lights.", "fi", 160))]
    # (greedy decoding is unsure of both, average log-probability -1.43 and -1.18 against a threshold of -1)
    runs = []
    for _ in range(2):
        model = WhisperTranscriber(kit / "whisper-base", SttConfig())
        runs.append([model.transcribe(clip, hint="Hey Jarvis,") for clip in clips * 2])
    assert any(t > 0 for t in tried), f"no retry was sampled: {runs}"
    assert runs[0] == runs[1]


class Decodes:
    """CTranslate2's Whisper, counting its decodes (each try at a window)."""

    def __init__(self, model) -> None:  # type: ignore[no-untyped-def]
        self.model, self.count = model, 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.model, name)

    def generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.count += 1
        return self.model.generate(*args, **kwargs)


def test_without_retries_whisper_decodes_once_where_it_is_unsure(whisper: WhisperTranscriber,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A look ahead's words (os1d.agent.foresight) are Whisper's first try: where it is unsure of a voice it
    decodes once, not again warmer (each try costs as much as the first)."""
    decodes = Decodes(whisper._model.model)
    monkeypatch.setattr(whisper._model, "model", decodes)
    clip = join(silence(0.3), kokoro("Turn off the lights.", "jf_alpha"), silence(0.4))  # (unsure: see above)
    retried = whisper.transcribe(clip)
    assert decodes.count > 1 and words(retried)
    decodes.count = 0
    first = whisper.transcribe(clip, retries=False)
    assert decodes.count == 1 and words(first)


def test_where_whisper_is_unsure_it_tells_its_first_words_before_it_tries_again(kit: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`unsure` is told the first try's words before the retries (one decode so far), and the words kept are those
    faster-whisper keeps of all its tries (two models loaded: the same seeded samples); where Whisper is sure of the
    words, nothing is told."""
    wake = trim(espeak("hey jarvis", "en-us+f3", 165))
    cook = "What should I cook tonight?"
    said = [kokoro(cook, "jf_alpha", 0.9), kokoro(cook, "jf_alpha", 0.8),
            espeak("Tell me a joke about cats.", "fi", 160), kokoro("Turn off the lights.", "jf_tebukuro", 1.1)]
    clips = [join(silence(0.3), wake, silence(0.3), trim(s), silence(0.3)) for s in said]
    told, plain = (WhisperTranscriber(kit / "whisper-base", SttConfig()) for _ in range(2))
    decodes = Decodes(told._model.model)
    monkeypatch.setattr(told._model, "model", decodes)
    firsts: list[list[tuple[str, int]]] = []
    finals = []
    for clip in clips:
        decodes.count, first = 0, []
        firsts.append(first)
        finals.append(told.transcribe(clip, hint="Hey Jarvis,", unsure=lambda t: first.append((t, decodes.count))))
    assert finals == [plain.transcribe(clip, hint="Hey Jarvis,") for clip in clips]
    assert [bool(f) for f in firsts] == [True, True, True, False]  # (the last voice is clear to Whisper)
    for clip, first, final in zip(clips[:3], firsts, finals, strict=False):
        assert first == [(told.transcribe(clip, hint="Hey Jarvis,", retries=False), 1)]
    assert any(first[0][0] != final for first, final in zip(firsts[:3], finals, strict=False))


def test_a_greedy_try_that_would_loop_ends_at_its_first_repeat(whisper: WhisperTranscriber) -> None:
    """Whisper's first try at this request, in this voice, loops ("I am the boss of the company of the company of …"
    to its token limit) unless no run of tokens may come twice: it ends at the first repeat."""
    voice = ("jf_alpha", 1.2)
    clip = join(silence(0.3), trim(say("Hey Jarvis.", voice)), silence(0.3),
                trim(say("Can you remind me to call my mother on Sunday?", voice)), silence(0.3))
    first = whisper.transcribe(clip, hint="Hey Jarvis,", retries=False).lower().split()
    runs = [tuple(first[i : i + 4]) for i in range(len(first) - 3)]
    assert first and len(first) < 16 and len(set(runs)) == len(runs), first


def test_damaged_model_is_a_clear_error(tmp_path: Path, kit: Path) -> None:
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_bytes((kit / "whisper-base" / name).read_bytes())
    (folder / "model.bin").write_bytes(b"not a model")
    from os1d.errors import UserError

    with pytest.raises(UserError, match=r"cannot be loaded .*os1d models pull whisper-base --force"):
        WhisperTranscriber(folder, SttConfig())
