"""The codec's caches return exactly what an uncached encode or decode would."""

from __future__ import annotations

from dataclasses import replace

from lashspec.kernel import codec
from lashspec.kernel.types import (
    DeliveryPolicy,
    LeaseOwnerIdentity,
    LocalProcessLiveness,
    ProcessWake,
    ProcessWakeDelivery,
    QueuedWorkBatch,
    QueuedWorkItem,
    SessionCheckpoint,
    SlotPolicy,
)


def _batch() -> QueuedWorkBatch:
    wake = ProcessWakeDelivery("wake-1", "s", "process-1", 1, "body", "dedupe-1")
    return QueuedWorkBatch(
        batch_id="qwb-1",
        session_id="s",
        enqueue_seq=1,
        source_key="key",
        delivery_policy=DeliveryPolicy.AFTER_CURRENT_TURN_COMMIT,
        slot_policy=SlotPolicy.JOIN,
        merge_key=None,
        available_at_ms=0,
        enqueued_at_ms=5,
        items=(QueuedWorkItem("qwb-1:item:0", ProcessWake(wake)),),
    )


def test_records_round_trip_and_decode_once_per_text() -> None:
    batch = _batch()
    text = codec.dumps(batch)
    assert codec.loads(text) == batch
    first = codec.loads_record(text)
    assert first == batch
    assert codec.loads_record(text) is first  # immutable, so shared


def test_values_holding_mutable_json_are_decoded_every_time() -> None:
    checkpoint = SessionCheckpoint(3, {"turn": [1, 2]})
    text = codec.dumps(checkpoint)
    first = codec.loads_record(text)
    assert first == checkpoint
    second = codec.loads_record(text)
    assert second == checkpoint and second is not first


def test_owner_encoding_is_cached_per_object_not_per_equal_value() -> None:
    one = LeaseOwnerIdentity("o", "o:1", LocalProcessLiveness("h", "b", 1, "t"))
    true = LeaseOwnerIdentity("o", "o:1", LocalProcessLiveness("h", "b", True, "t"))  # type: ignore[arg-type]
    assert one == true  # equal values that encode differently
    assert codec.dumps_owner(one) == codec.dumps(one)
    assert codec.dumps_owner(true) == codec.dumps(true) != codec.dumps(one)
    assert codec.loads_owner(codec.dumps_owner(one)) == one


def test_an_encoded_record_stands_for_its_decoding_only_when_it_decodes_as_itself() -> None:
    codec._record_by_text.clear()
    batch = _batch()
    text = codec.dumps_record(batch)
    assert text == codec.dumps(batch)
    assert codec.loads_record(text) is batch  # remembered at encoding: no decode

    # a list where the record declares a tuple decodes as a tuple: the text is decoded
    items = list(batch.items)
    listed = replace(batch, batch_id="qwb-2", items=items)
    listed_text = codec.dumps_record(listed)
    decoded = codec.loads_record(listed_text)
    assert decoded is not listed and decoded.items == tuple(items)

    # a str subclass decodes as a plain str: likewise
    class Tag(str):
        pass

    tagged = replace(batch, batch_id="qwb-3", source_key=Tag("k"))
    tagged_text = codec.dumps_record(tagged)
    assert type(codec.loads_record(tagged_text).source_key) is str
