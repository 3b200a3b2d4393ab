"""Transcription with faster-whisper: for display, memory recall and storage."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.chunk import RATE
from ..audio.vad import split_at_pauses
from ..config import SttConfig
from ..errors import UserError, first_line


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """auto → CUDA with float16 when CTranslate2 sees a GPU, else CPU with int8."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


PIECE_S = 10.0
"""Speech longer than this is transcribed in pieces: on a whole 30 s window, greedy decoding sometimes
skips sentences, stops early or loops (seen with whisper-base on long utterances)."""


FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""Long speech: a window that loops ("men, men, men, …") is decoded again warmer, as Whisper does."""
SHORT_FALLBACK = (0.0, 0.4, 0.8)
"""Speech up to PIECE_S: fewer retries, one sample each (faster-whisper's default of five samples per
retry cost seconds on a CPU where Whisper is unsure of a voice), the best of the tries kept."""
TOKENS_PER_S = 10
"""Speech up to PIECE_S holds at most this many tokens a second (people say about 3 words, 4 tokens): a
decode that loops ("the boss of the boss of …") stops there, and is retried warmer, in a fraction of
the time a loop to Whisper's 448-token limit takes."""
NO_REPEAT = 4
"""Speech up to PIECE_S: no run of this many tokens comes twice in a decode, so a greedy try that loops ("the boss of
the company of the company of …") ends at its first repeat instead of running to its token limit (220 instead of
483 ms on a CPU). The same words as without for the 82 wake requests of the tests and 87 of 88 requests in 11
voices (the 88th was that loop); with runs of 3 a few more words were wrong."""

SEED = 1
"""The retries' samples come from a generator seeded so: the same speech gives the same words in every run
(unseeded, a retry on an unclear voice gave "Turn off the lights." in one run and "Two North Delights." in the
next), and a run can be replayed."""


WINDOW_MARGIN_S = 4.0
"""Encoder window beyond the audio, for speech up to PIECE_S. Whisper encodes 30 s windows, mostly
padding for a spoken request; encoding only the audio and this much padding is 3× faster and as
accurate (BENCHMARKS.md). With under about 2 s of padding the decoder starts to invent words."""


def _passes(tried: tuple[Any, float, float, float], options: Any) -> bool:
    """faster-whisper's test of one try (result, average log-prob, temperature, compression ratio): no retry."""
    result, logprob, _temperature, ratio = tried
    low = options.log_prob_threshold is not None and logprob < options.log_prob_threshold
    if low and options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold:
        return True  # silence
    return not low and (options.compression_ratio_threshold is None or ratio <= options.compression_ratio_threshold)


def _short_window_model():  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    class ShortWindowWhisper(WhisperModel):
        """faster-whisper's model, encoding `frames` mel frames of each padded 30 s window (all if None), and
        telling `unsure` the first try's words where it is unsure of them, before its retries."""

        frames: int | None = None
        unsure: Callable[[str], None] | None = None

        def encode(self, features: np.ndarray):  # type: ignore[no-untyped-def]
            return super().encode(features[..., : self.frames] if self.frames else features)

        def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):  # type: ignore[no-untyped-def]
            """faster-whisper's tries at one window, told apart: the first, then (unsure) the retries, the best
            of all kept as faster-whisper keeps it (below the compression threshold, then by log-prob)."""
            fallback = super().generate_with_fallback
            if self.unsure is None or len(options.temperatures) < 2:
                return fallback(encoder_output, prompt, tokenizer, options)
            first = fallback(encoder_output, prompt, tokenizer,
                             dataclasses.replace(options, temperatures=options.temperatures[:1]))
            if _passes(first, options):
                return first
            self.unsure(tokenizer.decode(first[0].sequences_ids[0]).strip())
            retried = fallback(encoder_output, prompt, tokenizer,
                               dataclasses.replace(options, temperatures=options.temperatures[1:]))
            if _passes(retried, options):
                return retried
            tries = [first, retried]
            limit = options.compression_ratio_threshold
            return max([t for t in tries if limit is None or t[3] <= limit] or tries, key=lambda t: t[1])

    return ShortWindowWhisper


class WhisperTranscriber:
    """Loads a CTranslate2 Whisper folder; transcribe() is blocking (run it in an executor)."""

    def __init__(self, folder: Path, cfg: SttConfig) -> None:
        self.device, self.compute_type = pick_device(cfg.device, cfg.compute_type)
        self.cfg = cfg
        import ctranslate2

        ctranslate2.set_random_seed(SEED)  # (read once, by the thread that first samples: this model's worker)
        try:
            self._model = _short_window_model()(
                str(folder), device=self.device, compute_type=self.compute_type,
                cpu_threads=min(4, os.cpu_count() or 1), num_workers=1,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise UserError(
                f"speech model {folder.name} cannot be loaded ({first_line(exc)}); "
                f"run `os1d models pull {folder.name} --force`"
            ) from None

    def transcribe(self, samples: np.ndarray, hint: str = "", retries: bool = True,
                   unsure: Callable[[str], None] | None = None) -> str:
        """16 kHz int16 speech → text. hint: words the audio is expected to begin with (the wake phrase); retries:
        decode again warmer where Whisper is unsure (speech up to PIECE_S; without, its first try is the answer);
        unsure: told the first try's words before such retries (from this thread)."""
        audio = samples.astype(np.float32) / 32768.0
        clips: str | list[float] = "0"
        temperatures, best_of, no_repeat = SHORT_FALLBACK if retries else SHORT_FALLBACK[:1], 1, NO_REPEAT
        max_tokens: int | None = int(TOKENS_PER_S * len(samples) / RATE) + 16
        self._model.frames = 2 * math.ceil((len(samples) / RATE + WINDOW_MARGIN_S) * 50)  # an even count
        self._model.unsure = unsure
        if len(samples) > PIECE_S * RATE:  # long speech in pieces cut at pauses, each a whole window
            cuts = split_at_pauses(samples, PIECE_S)
            clips = [t for a, b in zip(cuts, cuts[1:], strict=False) for t in (a, b)]
            self._model.frames = None  # (short windows skip words on some long pieces)
            temperatures, best_of, max_tokens, no_repeat = FALLBACK_TEMPERATURES, 5, None, 0
            self._model.unsure = None  # (one window of many: its words are not the speech's)
        segments, _info = self._model.transcribe(
            audio, language=self.cfg.language or None, beam_size=self.cfg.beam_size, initial_prompt=hint or None,
            # with timestamps, a pause after the first sentence ends a segment, not the transcript
            condition_on_previous_text=False, without_timestamps=False, vad_filter=False, clip_timestamps=clips,
            # greedy, and warmer again where unsure or looping
            temperature=temperatures, best_of=best_of, max_new_tokens=max_tokens, no_repeat_ngram_size=no_repeat,
        )
        try:
            return " ".join(s.text.strip() for s in segments).strip()  # (decoded here, as the segments come)
        finally:
            self._model.unsure = None

