"""The memory store and its rules, on real MiniLM embeddings, real SQLite and a real usearch index."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest

from os1d.config import MemoryConfig
from os1d.memory.facts import extract
from os1d.memory.recall import Memories, forgetful, pieces, recency
from os1d.memory.store import CONNECTIVITY, DB, DTYPE, INDEX, MemoryStore

DAY = 24 * 3600.0


@pytest.fixture(scope="module")
def embedder(kit: Path):  # type: ignore[no-untyped-def]
    from os1d.memory.embed import MiniLMEmbedder

    return MiniLMEmbedder(kit / "minilm")


@pytest.fixture
def memory(tmp_path: Path, embedder) -> Memories:  # type: ignore[no-untyped-def]
    return Memories(MemoryStore(tmp_path / "memory"), embedder, MemoryConfig())


def files_of(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def test_recall_scores_cosine_and_recency_and_drops_the_unrelated(memory: Memories, embedder) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    texts = ["I went hiking in the Alps with my sister.", "My sister and I hiked in the mountains last summer.",
             "The quarterly tax report is due on Friday.", "I adopted a grey cat called Pixel."]
    ages = [0.0, 10 * DAY, 0.0, 0.0]
    vecs = embedder.embed(texts)
    ids = [memory.store.add("user", "said", t, v, at=now - a) for t, v, a in zip(texts, vecs, ages)]
    found = memory.recall("Tell me about the mountain trip with my sister.")
    by_id = {m["id"]: m for m in found}
    assert ids[2] not in by_id, "an unrelated memory (cosine below 0.28) is dropped"
    assert ids[0] in by_id and ids[1] in by_id
    for m in found:  # score = 0.7 × cosine + 0.3 × recency (one-day half-life)
        age = now - (now - ages[ids.index(m["id"])])
        assert m["score"] == pytest.approx(0.7 * m["cosine"] + 0.3 * recency(age, 24.0), abs=2e-3)
        assert m["cosine"] >= 0.28
    assert [m["score"] for m in found] == sorted((m["score"] for m in found), reverse=True)
    # the ten-day-old memory loses its recency: with recency alone deciding, the fresh one wins
    only_recent = Memories(memory.store, embedder, MemoryConfig(recency_weight=1.0))
    assert only_recent.recall("my sister and the mountains")[0]["id"] == ids[0]
    assert recency(DAY, 24.0) == pytest.approx(0.5) and recency(0.0, 24.0) == 1.0
    assert len(Memories(memory.store, embedder, MemoryConfig(top_k=1)).recall("my sister")) == 1
    assert Memories(memory.store, embedder, MemoryConfig(min_cosine=0.99)).recall("my sister") == []


def test_similarity_is_exact_whatever_the_index_keeps(memory: Memories, embedder) -> None:  # type: ignore[no-untyped-def]
    """The index (int8 vectors) only finds the nearest; each one's cosine is computed on the float32 embedding
    SQLite keeps, so thresholds and scores see the true similarity, and the order is the true order."""
    texts = [f"{who} {what}" for who in ("My sister", "My brother", "Our neighbour", "My old teacher")
             for what in ("plays the cello.", "lives in Lisbon.", "bakes bread on Sundays.", "runs along the river.",
                          "is afraid of dogs.", "collects old maps.")]
    vecs = embedder.embed(texts)
    for t, v in zip(texts, vecs):
        memory.store.add("user", "said", t, v)
    query = embedder.embed(["Who in my family makes music?"])[0]
    found = memory.store.search(query, 10)
    exact = {t: float(v @ query) for t, v in zip(texts, vecs)}
    assert [round(c, 6) for _, c in found] == [round(exact[m.text], 6) for m, _ in found]
    assert [m.text for m, _ in found] == sorted(exact, key=lambda t: -exact[t])[:10]


def test_near_duplicates_are_kept_once_and_refreshed(memory: Memories) -> None:
    first = memory.remember("I love hiking in the mountains.", "")
    t0 = memory.store.get(first)[0].created_at
    time.sleep(0.05)
    assert memory.remember("I love hiking in the mountains!", "") == []
    assert memory.store.count() == 1 and memory.store.get(first)[0].created_at > t0
    assert memory.remember("I hate hiking in the rain.", "") != []


def test_long_input_is_kept_as_its_sentences_and_short_input_as_it_is() -> None:
    long = ("Yesterday I finally finished the letter for my grandmother's ninetieth birthday. It took me three "
            "weeks because I kept rewriting the opening. My sister thinks I worry too much about small things. "
            "Maybe she is right, but the letter matters to me.")
    assert len(pieces(long)) == 4 and pieces(long)[2] == "My sister thinks I worry too much about small things."
    assert pieces("  I like tea.  ") == ["I like tea."]
    assert pieces("") == []


@pytest.mark.parametrize("reply, kept", [
    ("I'm sorry, I don't remember your name.", False),
    ("I do not recall that. Could you tell me again?", False),
    ("I don't have any memory of that.", False),
    ("Your name is Theodore, of course.", True),
    ("I don't remember the film's ending either, but I loved the music. What did you think of it? "
     "Tell me more about the scene you liked.", True),
])
def test_replies_that_only_say_os1_does_not_remember_are_not_kept(reply: str, kept: bool) -> None:
    assert forgetful(reply) is not kept


def test_a_forgetful_reply_is_not_stored_but_the_users_words_are(memory: Memories) -> None:
    memory.remember("What's my favourite colour?", "I'm sorry, I don't remember that.")
    assert [m.role for m in memory.store.all()] == ["user"]


def test_the_users_name_is_a_pinned_fact_that_a_later_name_replaces(memory: Memories) -> None:
    memory.remember("My name is Theodore, and I write letters for other people.", "Nice to meet you.")
    assert memory.facts() == {"name": "Theodore"}
    memory.remember("Actually, call me Theo.", "Theo it is.")
    assert memory.facts() == {"name": "Theo"}
    names = [m for m in memory.store.all() if m.fact == "name"]
    assert len(names) == 1 and names[0].text == "My name is Theo."
    memory.remember("I'm tired today.", "Get some rest.")
    memory.remember("I live in Los Angeles.", "Lovely.")
    assert memory.facts() == {"name": "Theo", "home": "Los Angeles"}
    found = memory.recall("Do you remember my name?")
    assert found[0]["text"] == "My name is Theo."


def test_saying_where_you_are_from_or_what_you_believe_does_not_rename_you(memory: Memories) -> None:
    memory.remember("My name is Theo.", "Hello, Theo.")
    for said in ("I'm Canadian, by the way.", "I am Japanese and I live in Osaka.", "I'm Korean-American.",
                 "Honestly, I'm Catholic.", "I'm French!"):
        memory.remember(said, "Tell me more.")
    assert memory.facts() == {"name": "Theo", "home": "Osaka"}
    memory.remember("Hi, I'm Samantha! I moved to Rio de Janeiro.", "Welcome, Samantha.")
    assert memory.facts() == {"name": "Samantha", "home": "Rio de Janeiro"}
    memory.remember("My name is Christian, and I live in New York City.", "Nice to meet you, Christian.")
    assert memory.facts() == {"name": "Christian", "home": "New York City"}
    memory.remember("I'm Theo. I'm Canadian.", "Hello, Theo.")
    assert memory.facts()["name"] == "Theo"


def test_a_name_typed_in_lower_case_is_kept_capitalised(memory: Memories) -> None:
    memory.remember("my name is theo", "Hello, Theo.")  # os1d ask
    memory.remember("call me later, i'm tired", "Of course.")
    memory.remember("my name is not important", "All right.")
    assert memory.facts() == {"name": "Theo"}


@pytest.mark.parametrize("heard, name", [  # answers to "What should I call you?", as Whisper wrote them
    ("Samantha.", "Samantha"), ("Am David.", "David"), ("Oh, Theo!", "Theo"), ("Michael, nice to meet you. Can you "
     "help me plan my week?", "Michael"), ("Oh, it's the door.", ""), ("No.", ""), ("Canadian.", ""), ("cement", ""),
    ("I'd rather not say.", ""), ("Why do you ask?", ""), ("Call me Theo.", "Theo"),
])
def test_a_name_said_alone_is_told_from_other_answers(heard: str, name: str) -> None:
    assert extract(heard, asked_name=True).get("name", "") == name


def test_a_name_said_alone_is_kept_only_as_the_answer_to_its_question(memory: Memories) -> None:
    memory.remember("Samantha.", "What a lovely name.")
    assert memory.facts() == {}
    memory.remember("Samantha.", "What a lovely name.", asked_name=True)
    assert memory.facts() == {"name": "Samantha"}


def test_forgetting_removes_the_text_from_every_file(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "memory"
    daemon = Memories(MemoryStore(folder), embedder, MemoryConfig())  # a running daemon's connection
    secret = "My locker code is Quokkaberry-4471."
    daemon.remember("I had pancakes for breakfast.", "Sounds delicious.")
    daemon.remember(secret, "I'll keep it safe.")
    daemon.store.save_index()
    assert b"Quokkaberry" in files_of(folder)
    target = next(m.id for m in daemon.store.all() if "Quokkaberry" in m.text)
    cli = MemoryStore(folder)  # `os1d memories forget ID` beside it
    assert cli.forget(target) and not cli.forget(target)
    cli.close()
    assert b"Quokkaberry" not in files_of(folder)
    assert all("Quokkaberry" not in m["text"] for m in daemon.recall(secret))  # the daemon sees it gone
    daemon.close()
    assert b"Quokkaberry" not in files_of(folder)
    again = MemoryStore(folder)
    assert again.count() == 3 and target not in np.asarray(again.index.keys)
    assert again.forget_all() == 3 and again.count() == 0
    again.close()
    assert b"pancakes" not in files_of(folder)


def test_the_index_is_rebuilt_when_missing_stale_or_corrupt(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "memory"
    memory = Memories(MemoryStore(folder), embedder, MemoryConfig())
    memory.remember("I play the cello in a small orchestra.", "")
    memory.close()
    other = Memories(MemoryStore(folder), embedder, MemoryConfig())
    other.remember("My brother lives in Lisbon.", "")  # the saved index does not hold this one
    other.store.db.close()  # killed: the index not saved again
    stale = Memories(MemoryStore(folder), embedder, MemoryConfig())
    assert stale.recall("Where does my brother live?")[0]["text"] == "My brother lives in Lisbon."
    stale.close()
    (folder / INDEX).write_bytes(os.urandom(5000))
    corrupt = Memories(MemoryStore(folder), embedder, MemoryConfig())
    assert corrupt.recall("What instrument do I play?")[0]["text"] == "I play the cello in a small orchestra."
    corrupt.close()
    (folder / INDEX).unlink()
    missing = MemoryStore(folder)
    assert len(missing.index) == 2
    missing.close()


@pytest.mark.parametrize("dtype, connectivity", [("f16", 16), ("bf16", 16)])
def test_an_index_of_an_older_os1d_is_rebuilt_in_the_current_layout(tmp_path: Path, embedder, dtype: str,  # type: ignore[no-untyped-def]
                                                                    connectivity: int) -> None:
    from usearch.index import Index

    folder = tmp_path / "memory"
    memory = Memories(MemoryStore(folder), embedder, MemoryConfig())
    memory.remember("I play the cello in a small orchestra.", "")
    memory.remember("My brother lives in Lisbon.", "")
    memory.close()
    old = Index(ndim=384, metric="cos", dtype=dtype, connectivity=connectivity)  # as os1d wrote it before
    store = MemoryStore(folder)
    keys = np.asarray(store.index.keys)
    old.add(keys, np.stack([store.index.get(int(k)) for k in keys]).astype(np.float32))
    store.close()
    old.save(str(folder / INDEX))
    again = Memories(MemoryStore(folder), embedder, MemoryConfig())
    assert str(again.store.index.dtype).endswith(DTYPE.upper()) and len(again.store.index) == 2
    assert again.store.index.connectivity == CONNECTIVITY
    assert (dtype, connectivity) != (DTYPE, CONNECTIVITY)
    assert again.recall("Where does my brother live?")[0]["text"] == "My brother lives in Lisbon."
    again.close()


def test_the_memory_folder_is_private(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    os.umask(0o022)
    folder = tmp_path / "data" / "memory"
    memory = Memories(MemoryStore(folder), embedder, MemoryConfig())
    memory.remember("My name is Ana.", "Hello Ana.")
    memory.store.save_index()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.iterdir() if p.is_file()]
    assert {DB, DB + "-wal", INDEX} <= {p.name for p in files}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), {p.name: oct(p.stat().st_mode) for p in files}
    memory.close()


def test_long_input_is_also_kept_as_a_summary_when_asked(tmp_path: Path) -> None:
    """memory.summarize: a long turn leaves its sentences and an LLM summary of at most 64 tokens (the
    stand-in LLM's summary is its one sentence; the path is the real one: the LLM lane, the real loop)."""
    from harness import kit_config, run_listener
    from os1d.events import Remembered
    from os1d.memory.store import MemoryStore
    from speech import espeak, join, kokoro, silence

    story = ("Last weekend I drove up the coast with my brother. We stopped at a tiny bakery in a fishing "
             "village. The owner told us stories about the storms of the old days. I want to go back there "
             "in the spring with my daughter.")
    pcm = join(silence(0.5), espeak("hey jarvis", "en-gb+m3", 150), silence(0.3), kokoro(story, "jm_kumo"),
               silence(4.0))
    memory = tmp_path / "memory"
    run = run_listener(pcm, kit_config(memory=MemoryConfig(dir=str(memory), summarize=True)))
    assert run.failure is None, run.failure
    assert run.of(Remembered)
    store = MemoryStore(memory)
    kinds = [m.kind for m in store.all()]
    # (its four sentences, as far as Whisper punctuates them: on some CPUs it leaves out the first two full stops)
    assert kinds.count("said") >= 2 and kinds.count("summary") == 1, kinds
    summary = next(m.text for m in store.all() if m.kind == "summary")
    assert summary.startswith("Hello from the tiny stand-in model") and len(summary.split()) <= 64
    store.close()


def test_a_damaged_database_is_one_clear_line_and_is_left_as_it_was(tmp_path: Path) -> None:
    from os1d.errors import UserError

    folder = tmp_path / "memory"
    folder.mkdir()
    junk = os.urandom(4096)
    (folder / DB).write_bytes(junk)
    with pytest.raises(UserError, match="cannot open the memory store .*memory.db: file is not a database"):
        MemoryStore(folder)
    assert (folder / DB).read_bytes() == junk


def test_a_write_of_ones_own_does_not_hide_another_processs(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """The daemon stores a memory right after `os1d` (another connection) did: the other one is still found."""
    folder = tmp_path / "memory"
    daemon, other = MemoryStore(folder), MemoryStore(folder)
    sister, cello = embedder.embed(["My sister Clara lives in Lisbon.", "I play the cello."])
    daemon.search(cello, 1)  # the daemon has looked at the store once
    other.add("user", "said", "My sister Clara lives in Lisbon.", sister)
    daemon.add("user", "said", "I play the cello.", cello)
    assert daemon.search(sister, 1)[0][0].text == "My sister Clara lives in Lisbon."
    other.close()
    daemon.close()
