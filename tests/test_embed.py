"""Memory embeddings: parity with sentence-transformers, batches, meaning, damaged model files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from os1d.errors import UserError
from os1d.memory.embed import MiniLMEmbedder

LONG = (
    "The first time I tried to bake bread on my own, I followed a recipe that my grandmother had written "
    "on the back of an envelope sometime in the 1970s, and it assumed that everybody already knew how warm "
    "the water should be, how long to knead, and what the dough ought to feel like when it was ready. "
    "I did not know any of those things. The loaf came out dense, pale and oddly sour, and my roommate "
    "politely suggested that we use it as a doorstop. Over the next few months I baked every weekend, "
    "kept notes in a spiral notebook, weighed the flour instead of scooping it, bought a cheap thermometer, "
    "and learned to wait for the dough to double rather than watching the clock. By spring the loaves were "
    "good enough to bring to friends, and by summer people were asking me for the recipe, which by then "
    "looked nothing like my grandmother's envelope except for the pinch of sugar she always insisted on. "
    "What surprised me most was not the bread itself but how much patience it taught me: you cannot hurry "
    "yeast, you cannot argue with an oven, and you cannot fake a crust. Those lessons turned out to matter "
    "far beyond the kitchen, at work, in traffic, and in every conversation where I wanted to rush ahead. "
    "These days I bake on Sunday mornings while the house is still quiet, listening to old radio plays, "
    "and I give most of the bread away to the neighbours, who repay me in tomatoes, eggs and gossip."
)
"""Well over 256 tokens: both sides must cut it at the same place."""

SENTENCES = [
    "hi",
    "Hello!",
    "my name is Theodore",
    "What is my name?",
    "The weather is cold today.",
    "Remind me to call my sister at 6:30 pm on Friday, March 14th.",
    "I paid $1,249.99 for the laptop, which is 20% more than last year's model.",
    "Samantha said she'd be late — maybe 10 or 15 minutes?",
    "Can you turn off the lights in the kitchen, please?",
    "I'm allergic to peanuts, shellfish and, oddly enough, kiwi.",
    "Café au lait, crème brûlée and a croissant, s'il vous plaît.",
    "Ich heiße Jürgen und wohne in München.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "I love this song 🎶🎸 so much!!!",
    "user@example.com asked about order #A-1138 (shipped 2024-05-02).",
    "e = mc^2, and pi is roughly 3.14159",
    "My favourite colour is green, but my partner prefers blue.",
    "We adopted a three-legged cat named Pancake last Tuesday.",
    "Don't forget: the dentist appointment moved from 9am to 11:15am.",
    "The quick brown fox jumps over the lazy dog.",
    "How far is it from Lisbon to Porto by train?",
    "   leading and trailing spaces   ",
    "ALL CAPS SENTENCE ABOUT A VERY LOUD MEETING",
    "Tell me a joke about penguins.",
    "I've been feeling a bit stressed about the exam next week.",
    "Set a timer for 25 minutes.",
    "The mitochondria is the powerhouse of the cell.",
    "",
    LONG,
]


@pytest.fixture(scope="module")
def embedder(kit: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(kit / "minilm", threads=1)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_vectors_match_sentence_transformers(embedder: MiniLMEmbedder, kit: Path) -> None:
    from sentence_transformers import SentenceTransformer

    # the safetensors the kit's ONNX file was exported from, run by sentence-transformers on torch
    ref = SentenceTransformer(str(kit / "minilm-torch"), device="cpu")
    assert ref.max_seq_length == 256 and len(ref.tokenizer(LONG)["input_ids"]) > 300
    want = ref.encode(SENTENCES, batch_size=8, convert_to_numpy=True)
    got = embedder.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = cosines(got, want)
    assert cos.min() >= 1 - 1e-4, {SENTENCES[i][:40]: float(cos[i]) for i in np.argsort(cos)[:3]}
    singly = np.concatenate([embedder.embed([s]) for s in SENTENCES])
    assert cosines(got, singly).min() >= 1 - 1e-5


def test_a_name_is_nearer_to_a_question_about_names_than_to_the_weather(embedder: MiniLMEmbedder) -> None:
    fact, question, weather = embedder.embed(["my name is Theodore", "what is my name?",
                                              "the weather is cold today"])
    assert float(fact @ question) > float(fact @ weather) + 0.2, (fact @ question, fact @ weather)


def test_damaged_or_missing_model_file_is_a_one_line_error(kit: Path, tmp_path: Path) -> None:
    folder = tmp_path / "minilm"
    shutil.copytree(kit / "minilm", folder)
    model = folder / "onnx" / "model.onnx"
    os.truncate(model, model.stat().st_size // 3)
    with pytest.raises(UserError) as err:
        MiniLMEmbedder(folder)
    assert "memory model minilm cannot be loaded" in str(err.value)
    assert str(err.value).endswith("run `os1d models pull minilm --force`") and "\n" not in str(err.value)
    model.unlink()
    with pytest.raises(UserError, match=r"onnx/model.onnx does not exist; run `os1d models pull minilm`"):
        MiniLMEmbedder(folder)
