"""The Ultravox ONNX generation loop, proved on the stand-in model (real layout, names and dtypes)."""

from __future__ import annotations

import json
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from os1d.agent.prompt import Message
from os1d.agent.ultravox import Sampling, Trace, Ultravox, Usage
from os1d.errors import UserError
from speech import REPO, kokoro

sys.path.insert(0, str(REPO / "scripts"))
from ultravox_standin import SENTENCE, write_standin  # noqa: E402

HEADER = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
FOOTER = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


@pytest.fixture(scope="module")
def model(kit: Path) -> Ultravox:
    return Ultravox(kit / "ultravox")


@pytest.fixture(scope="module")
def model16(kit: Path, tmp_path_factory: pytest.TempPathFactory) -> Ultravox:
    folder = write_standin(tmp_path_factory.mktemp("uv16") / "ultravox", kit / "llama-tokenizer", kv="float16")
    return Ultravox(folder, dtypes={"decoder_model_merged": "q4f16"})


def audio_prompt(m: Ultravox, rows: np.ndarray, text: str = "") -> np.ndarray:
    return m.tokenize(HEADER + text + "<|audio|>" * len(rows) + FOOTER)


def test_audio_turn_streams_the_sentence_with_both_cache_dtypes(model: Ultravox, model16: Ultravox) -> None:
    speech = kokoro("What is the weather like tomorrow?")
    for m, dtype in ((model, np.float32), (model16, np.float16)):
        assert m.kv_dtype == dtype
        rows = m.encode_audio(speech)
        pieces = list(m.generate(audio_prompt(m, rows), rows))
        assert "".join(pieces) == SENTENCE
        assert len(pieces) > 5  # streamed, not returned at once


def test_merged_rows_are_the_encoder_rows(model: Ultravox) -> None:
    rows = model.encode_audio(kokoro("Hello there."))
    assert rows.shape[1] == model.config["hidden_size"]
    trace = Trace()
    list(model.generate(audio_prompt(model, rows, "Listen: "), rows, trace=trace))
    np.testing.assert_array_equal(trace.merged_rows, rows)


def test_rows_follow_the_audio_length_up_to_thirty_seconds(model: Ultravox) -> None:
    short = model.encode_audio(np.zeros(16000, dtype=np.int16))
    long = model.encode_audio(np.zeros(16000 * 40, dtype=np.int16))
    assert len(short) == 7  # 100 mel frames, 16 per row
    assert len(long) == 3000 // 16 + 1  # capped at 3000 frames (30 s)


def test_cache_grows_by_one_and_positions_follow(model: Ultravox) -> None:
    rows = model.encode_audio(kokoro("One two three."))
    ids = audio_prompt(model, rows)
    n = ids.shape[1]
    trace = Trace()
    model.forget_cache()  # (a prompt whole: nothing kept from the tests before)
    list(model.generate(ids, rows, trace=trace))
    steps = len(trace.past_lengths)
    assert trace.past_lengths == [0] + list(range(n, n + steps - 1))
    assert trace.positions[0] == list(range(n))
    assert trace.positions[1:] == [[n + k] for k in range(steps - 1)]
    assert trace.mask_lengths == list(range(n, n + steps))


def test_a_draft_is_taken_as_far_as_greedy_decoding_agrees_and_the_reply_is_the_same(model: Ultravox) -> None:
    """A reply begun over (other memories) is checked against what the first try said, in one prefill: the tokens
    the model would have chosen too cost no step, the rest is dropped from the cache (the stand-in says BROKEN
    when the cache, positions and mask it is fed disagree) and decoding goes on from there."""
    ids = model.tokenize(HEADER + "Hi" + FOOTER)
    n, said = ids.shape[1], model.tokenizer.encode(SENTENCE, add_special_tokens=False)
    wrong = [*said[:5], said[9], *said[6:]]  # the first try went another way at its 6th token
    for draft, taken in (((), 0), (said, len(said)), (wrong, 5), ([5, 6, 7], 0), ([*said, *said[:3]], len(said))):
        model.forget_cache()
        trace, usage = Trace(), Usage()
        assert "".join(model.generate(ids, draft=draft, trace=trace, usage=usage)) == SENTENCE, draft
        assert (usage.drafted, usage.accepted) == (min(len(draft), 255), taken)
        # one step for the prompt, the draft's tokens taken and the one after them; then one per token (and <|eot|>)
        assert len(trace.past_lengths) == 1 + len(said) + 1 - (taken + 1 if draft else 1)
        assert trace.past_lengths[1:2] == ([] if taken == len(said) else [n + taken])
    four = Sampling(max_new_tokens=4)
    assert "".join(model.generate(ids, sampling=four, draft=said)) == model.tokenizer.decode(said[:4])
    sampled, usage = Sampling(max_new_tokens=30, temperature=1.0, top_p=0.05, seed=1), Usage()
    assert "".join(model.generate(ids, sampling=sampled, usage=usage, draft=said)) == SENTENCE and usage.drafted == 0
    usage = Usage()  # the daemon's way: the draft is the first try's text
    reply = model.stream([Message("user", "Hi")], None, Sampling(), usage=usage, draft=SENTENCE[:30] + " and so on")
    assert "".join(reply) == SENTENCE and 5 < usage.accepted < usage.drafted


def test_text_only_prompt_needs_no_audio(model: Ultravox) -> None:
    assert "".join(model.generate(model.tokenize(HEADER + "Hi!" + FOOTER))) == SENTENCE


def test_each_stop_id_ends_generation(kit: Path, tmp_path: Path, model: Ultravox) -> None:
    words = model.tokenizer.encode(SENTENCE, add_special_tokens=False)
    folder = tmp_path / "ultravox"
    shutil.copytree(kit / "ultravox", folder)
    for k in (1, 4, len(words) - 1):
        cfg = {"eos_token_id": [128001, words[k], 128008]}
        (folder / "generation_config.json").write_text(json.dumps(cfg))
        m = Ultravox(folder)
        text = "".join(m.generate(m.tokenize(HEADER + "Hi" + FOOTER)))
        assert text == model.tokenizer.decode(words[:k])


def test_max_new_tokens_caps_a_reply_that_does_not_stop(kit: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ultravox"
    shutil.copytree(kit / "ultravox", folder)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": 128001}))  # never produced
    m = Ultravox(folder)
    trace = Trace()
    text = "".join(m.generate(m.tokenize(HEADER + "Hi" + FOOTER), sampling=Sampling(max_new_tokens=40), trace=trace))
    assert len(trace.past_lengths) == 40
    assert text.startswith(SENTENCE + SENTENCE[:5])  # <|eot_id|> is not a stop here, so it goes on


def test_cancel_stops_within_one_step(model: Ultravox) -> None:
    cancel, trace, got = threading.Event(), Trace(), []
    for piece in model.generate(model.tokenize(HEADER + "Hi" + FOOTER), cancel=cancel, trace=trace):
        got.append(piece)
        if len(got) == 3:
            cancel.set()  # as a barge-in does, from the consumer's side
    assert len(got) == 3 and len(trace.past_lengths) == 3


def test_multibyte_characters_are_never_split(model: Ultravox) -> None:
    pieces = list(model.generate(model.tokenize(HEADER + "Hi" + FOOTER)))
    assert not any("\ufffd" in p for p in pieces)
    assert " ☕" in pieces
    assert len(model.tokenizer.encode(" ☕", add_special_tokens=False)) > 1  # the cup is several byte tokens


def test_sampling_is_seeded_and_top_p_narrows_it(model: Ultravox) -> None:
    ids = model.tokenize(HEADER + "Hi" + FOOTER)
    narrow = Sampling(max_new_tokens=30, temperature=1.0, top_p=0.05, seed=1)
    assert "".join(model.generate(ids, sampling=narrow)) == SENTENCE
    wide = Sampling(max_new_tokens=8, temperature=1.0, top_p=1.0, seed=7)
    first = "".join(model.generate(ids, sampling=wide))
    assert first == "".join(model.generate(ids, sampling=wide)) and first != SENTENCE[: len(first)]


def test_row_count_mismatch_is_a_clear_error(model: Ultravox) -> None:
    rows = model.encode_audio(kokoro("Hello there."))
    with pytest.raises(ValueError, match=r"prompt has \d+ <\|audio\|> tokens but the encoder gave \d+ rows"):
        list(model.generate(audio_prompt(model, rows[:-1]), rows))


def test_missing_or_unknown_component_is_a_user_error(kit: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown dtype 'q3'"):
        Ultravox(kit / "ultravox", dtypes={"audio_encoder": "q3"})
    with pytest.raises(UserError, match=r"llm.encoder_dtype = 'fp16' needs onnx/audio_encoder_fp16.onnx, which is "
                                        r"not in .*; run `os1d models pull ultravox` to fetch it, or set "
                                        r"llm.encoder_dtype to a precision that is there \(q4\)"):
        Ultravox(kit / "ultravox", dtypes={"audio_encoder": "fp16"})
    folder = tmp_path / "ultravox"
    shutil.copytree(kit / "ultravox", folder)
    (folder / "onnx" / "decoder_model_merged_q4.onnx").write_bytes(b"broken")
    with pytest.raises(UserError, match="cannot be loaded"):
        Ultravox(folder)


def test_a_kept_cache_gives_exactly_what_a_whole_prefill_gives(kit: Path) -> None:
    """A conversation of audio turns, recalled memories, a barge-in, a typed turn and a trimmed history: the
    cache-reusing model prefills only what is new, and ends every prefill with the same keys and values (and
    logits) as a model that prefills every prompt whole."""
    from os1d.agent.conversation import Conversation, Recollection
    from os1d.agent.prompt import Message, llama3_prompt
    from os1d.agent.ultravox import Usage
    from os1d.config import parse_config

    kept, whole = Ultravox(kit / "ultravox"), Ultravox(kit / "ultravox")
    whole.reuse_cache = False
    conv = Conversation(parse_config({"conversation": {"history": 6}}))
    turns = [("What should I cook tonight?", [], False), ("My sister is called Maya.", ["I like pasta."], False),
             ("Tell me about the sea.", ["My sister is called Maya."], True),  # cut off by a barge-in
             ("", ["My sister is called Maya."], False),  # a typed turn (its text below)
             ("Do you remember my sister?", ["My sister is called Maya.", "I like pasta."], False)]
    before: list[int] = []
    cached: list[int] = []
    for i, (said, memories, interrupted) in enumerate(turns):
        text = said or "What is a good name for a cat?"
        audio = kept.encode_audio(kokoro(said)) if said else None
        user = Message("user", "" if said else text, audio=audio is not None)
        messages = conv.messages(user, Recollection([{"text": m} for m in memories]))
        ids = kept.tokenize(llama3_prompt(messages, 0 if audio is None else len(audio)))
        usage, traces, replies = Usage(), [Trace(), Trace()], []
        for model, trace in zip((kept, whole), traces):
            replies.append("".join(model.generate(ids, audio, Sampling(), trace=trace,
                                                  usage=usage if model is kept else None)))
        assert replies[0] == replies[1] == SENTENCE
        for name, value in traces[1].present.items():  # the same cache, row for row
            np.testing.assert_array_equal(traces[0].present[name], value, err_msg=f"turn {i + 1}: {name}")
        np.testing.assert_allclose(np.stack(traces[0].logits), np.stack(traces[1].logits), atol=1e-5)
        now = ids[0].tolist()
        shared = 0
        while shared < min(len(before), len(now) - 1) and before[shared] == now[shared]:
            shared += 1
        assert usage.cached_tokens == shared and usage.prefill_tokens == len(now) - shared, f"turn {i + 1}"
        cached.append(shared)
        audio_at = [k for k, t in enumerate(now) if t == kept.audio_token_id]
        before = now[: audio_at[0]] if audio_at else now
        conv.remember(said or text, replies[0], interrupted=interrupted)
    persona = len(kept.tokenize(llama3_prompt([Message("system", messages[0].text)]))[0]) - 5  # (its header)
    assert cached[0] == 0 and cached[1] >= persona  # from the second turn on, the persona comes from the cache
    assert cached[2] > cached[1] and cached[3] > cached[2]  # … and the history, but the exchange before
    assert len(conv.history) == 4 and persona <= cached[4] < cached[3]  # trimmed after the fourth: persona only


def test_the_history_prefilled_between_turns_leaves_the_turn_only_its_new_part(kit: Path) -> None:
    """Each time the history changes (a reply, a reply cut short, a trim), the next prompt's start is prefilled
    ahead: the turn then prefills only the memories and the user's words, and still ends with exactly the
    cache and logits of a whole prefill."""
    from os1d.agent.conversation import Conversation, Recollection
    from os1d.agent.prompt import Message, llama3_prompt
    from os1d.agent.ultravox import Usage
    from os1d.config import parse_config

    kept, whole = Ultravox(kit / "ultravox"), Ultravox(kit / "ultravox")
    whole.reuse_cache = False
    conv = Conversation(parse_config({"conversation": {"history": 4}}))
    ahead: list[int] = []
    conv.on_history = lambda: ahead.append(kept.precache(conv.stable_messages()))
    said = ["What should I cook tonight?", "", "Tell me about the sea.", "Do you remember my sister?"]
    for i, words in enumerate(said):
        audio = kept.encode_audio(kokoro(words)) if words else None
        user = Message("user", words or "What is a good name for a cat?", audio=audio is not None)
        messages = conv.messages(user, Recollection([{"text": "My sister is called Maya."}] if i % 2 else []))
        ids = kept.tokenize(llama3_prompt(messages, 0 if audio is None else len(audio)))
        stable = len(kept.tokenize(llama3_prompt(conv.stable_messages(), reply=False))[0])
        usage, traces = Usage(), [Trace(), Trace()]
        for model, trace in zip((kept, whole), traces):
            assert "".join(model.generate(ids, audio, Sampling(), trace=trace,
                                          usage=usage if model is kept else None)) == SENTENCE
        for name, value in traces[1].present.items():
            np.testing.assert_array_equal(traces[0].present[name], value, err_msg=f"turn {i + 1}: {name}")
        np.testing.assert_allclose(np.stack(traces[0].logits), np.stack(traces[1].logits), atol=1e-5)
        if i:  # everything before the memories and the user's turn came from the cache
            assert usage.cached_tokens == stable and usage.prefill_tokens == ids.shape[1] - stable, f"turn {i + 1}"
        conv.remember(user.text, SENTENCE)
        assert ahead[-1] > 0
        if i == 2:  # a barge-in: the reply kept only as far as it was heard
            conv.cut_last_reply(SENTENCE[:12])
            assert 0 < ahead[-1] < ahead[-2]  # only the shortened reply is run again
    assert kept.precache(conv.stable_messages()) == 0  # nothing new: nothing run
    assert len(conv.history) < 2 * len(said)  # (the history was trimmed on the way)
