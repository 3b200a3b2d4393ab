"""The events' wire form (a fixed D-Bus signature per type, what travels is what the JSON log says) and each
subscriber's own bounded queue."""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
import threading
import time

from dbus_fast import Message, Variant
from dbus_fast._private.unmarshaller import Unmarshaller

from os1d import events
from os1d.events import Event, Feed, Recalled, TurnMetrics

SAMPLES = {"str": "héllo", "float": 0.25, "float | None": None, "bool": True, "int": 7, "int | None": None,
           "list[int]": [3, 5],
           "list[dict]": [{"id": 4, "text": "My name is Anna.", "cosine": 0.61, "score": 0.72}]}
TYPES = [c for _, c in inspect.getmembers(events, inspect.isclass) if issubclass(c, Event) and c is not Event]


def sample(cls: type[Event]) -> Event:
    values = {f.name: SAMPLES[str(f.type)] for f in cls.payload_fields()}
    return cls(1.5, turn=3, **values)


def test_every_event_type_has_a_fixed_signature_and_crosses_the_bus_intact() -> None:
    assert len(TYPES) >= 16
    for cls in TYPES:
        event = sample(cls)
        signature = cls.signature()
        assert signature.startswith("(") and len(signature) > 2, cls  # D-Bus has no empty struct
        body = ["x", event.turn, event.t, Variant(signature, event.payload())]
        msg = Message(path="/org/os1d/OS1", interface="org.os1d.OS1", member="Event", signature="sudv", body=body)
        back = Unmarshaller(io.BytesIO(msg._marshall(negotiate_unix_fd=False))).unmarshall()
        assert back is not None and back.body[2] == 1.5 and back.body[1] == 3
        payload = back.body[3]
        assert payload.signature == signature
        expected = event.to_dict()
        for field, value in zip(cls.payload_fields(), payload.value):
            want = expected[field.name]
            if want is None:  # (D-Bus has no null: NaN for a number, -1 for a count)
                assert math.isnan(value) if str(field.type) == "float | None" else value == -1, (cls, field.name)
            elif isinstance(event, Recalled):
                assert [list(m) for m in value] == [[4, "My name is Anna.", 0.61, 0.72]]
            else:
                assert value == want, (cls, field.name)


def test_a_type_that_cannot_travel_is_caught() -> None:
    @dataclasses.dataclass(frozen=True)
    class Odd(Event):
        things: set[str]

    try:
        Odd.signature()
    except KeyError as exc:
        assert "set[str]" in str(exc)
    else:
        raise AssertionError("a field type without a D-Bus form went unnoticed")


def test_metrics_not_measured_go_out_as_nan_and_stay_null_in_json() -> None:
    m = TurnMetrics(2.0, endpoint=520.0, stt=None, recall=None, llm_first_token=300.0, tts_first_audio=None,
                    total=900.0)
    assert m.signature() == "(ddddddddxx)" and m.payload()[-2:] == [-1, -1]
    assert m.payload()[0] == 520.0 and math.isnan(m.payload()[1])
    assert '"stt": null' in m.to_json() and '"turn": 0' in m.to_json()


def test_a_slow_subscriber_never_holds_up_the_sender_and_gets_the_newest_events() -> None:
    release = threading.Event()
    got: list[float] = []

    def slow(event: Event) -> None:
        release.wait(10)
        got.append(event.t)

    feed = Feed("slow", slow, size=8)
    t0 = time.monotonic()
    for i in range(1000):
        feed(events.ReplyDelta(float(i), text="x"))
    assert time.monotonic() - t0 < 1.0  # the sender never waited for the subscriber
    release.set()
    feed.close()
    assert got[-1] == 999.0 and len(got) <= 10 and feed.dropped >= 990
    assert got == sorted(got)


def test_a_failing_subscriber_keeps_getting_later_events() -> None:
    seen: list[str] = []

    def flaky(event: Event) -> None:
        seen.append(event.text)  # type: ignore[attr-defined]
        if event.text == "bad":  # type: ignore[attr-defined]
            raise OSError("gone")

    feed = Feed("flaky", flaky)
    for text in ("a", "bad", "b"):
        feed(events.ReplyDelta(0.0, text=text))
    feed.close()
    assert seen == ["a", "bad", "b"]

