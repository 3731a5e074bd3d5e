"""A Faust (aiokafka driver) consumer that does not lose the records fetched before a seek.

The loss (see :mod:`stream_app.batch_service` for the full account): ``Consumer.getmany`` captures
the consumer generation only *after* ``_wait_next_records`` returned, so records fetched before a
rebalance/seek — from the old, fetched-ahead position P — are yielded after
``perform_seek()`` moved ``_read_offset`` back to the committed offset C. ``_drain_messages`` then
takes the jump C→P for a compaction gap and ``_add_gap`` marks C+1…P as acknowledged; the re-fetched
C…P-1 are dropped as already read, and the next commit passes over them.

Two overrides close it:

* ``_wait_next_records`` drops a partition's fetched records when they start past the next expected
  offset — fetched from the position before the seek (aiokafka re-fetches from the sought offset);
* ``_add_gap`` does nothing: the applications topic is neither compacted nor transactional (Tansu has
  no transactions), so a jump in offsets is never a legitimate gap, and committing over one would lose
  records. Without a gap, Faust's commit cannot pass an unprocessed offset (``_new_offset`` needs a
  contiguous run from the committed offset).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class SeekSafeConsumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        if records:
            stale = [tp for tp, recs in records.items() if recs and self._is_stale(tp, recs[0].offset)]
            if stale:
                self.log.info(
                    "dropping records fetched before a seek (aiokafka re-fetches them): %s",
                    {f"{tp.topic}:{tp.partition}": records[tp][0].offset for tp in stale},
                )
                records = {tp: recs for tp, recs in records.items() if tp not in stale}
        return records, active

    def _is_stale(self, tp: Any, first_offset: int) -> bool:
        """A batch starting past the next expected offset was fetched from a position since sought away.

        ``_read_offset`` is the committed offset right after a seek (next to read) and the last offset
        handed to a stream otherwise; offsets of these topics are contiguous (no compaction, no
        transaction markers), so anything beyond ``read + 1`` did not come from the current position.
        """
        read = self._read_offset.get(tp)
        return read is not None and first_offset > read + 1

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        return None


class SeekSafeTransport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer = SeekSafeConsumer


class SeekSafeApp(faust.App):
    """faust.App whose Kafka transport uses :class:`SeekSafeConsumer`."""

    def _new_transport(self) -> Any:
        return SeekSafeTransport(self.conf.broker_consumer, self)
