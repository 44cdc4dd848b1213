// Offset gaps: a fetch librdkafka stopped (auto.offset.reset=error) classified with the watermarks, restarted where
// the log goes on, and a truncated log's divergence point found by a probe consumer (KIP-320).
#include "forwarder.h"
#include "forwarder_internal.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace strait {

using namespace fwd;

// Starts the partition's fetch again at `offset`. After _AUTO_OFFSET_RESET librdkafka has stopped the fetch (state
// NONE, where seek() is refused with _STATE), so the partition is unassigned and assigned again.
bool Forwarder::Restart(PartitionState* p, int64_t offset, std::string* why) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
  rd_kafka_error_t* err = rd_kafka_incremental_unassign(consumer_, list);
  if (err == nullptr) {
    list->elems[0].offset = offset;
    err = rd_kafka_incremental_assign(consumer_, list);
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (err != nullptr) {
    *why = std::string(rd_kafka_error_name(err)) + ": " + rd_kafka_error_string(err);
    rd_kafka_error_destroy(err);
    return false;
  }
  // `committable` moves to `offset` once everything consumed before the gap is acknowledged (a placeholder entry in
  // flight, as for dropped records).
  if (p->inflight.empty()) {
    if (offset < p->committable) p->rewound = true;
    p->committable = offset;
    p->committable_epoch = -1;
  } else {
    p->inflight.push_back(InFlight{offset - 1, nullptr, -1});
  }
  p->consumed_next = offset;
  p->consumed_epoch = -1;
  p->event_offset = -1;  // an assign starts librdkafka's position afresh
  if (p->budget_paused) {
    std::vector<PartitionState*> one{p};
    SetPaused(one, true);
  }
  return true;
}

// A log truncated below strait's position (an unclean leader election) diverged from what strait read at an offset
// only its leader knows: the end offset of strait's leader epoch in its log (KIP-320's OffsetsForLeaderEpoch).
// librdkafka asks it, but under auto.offset.reset=error says only that the log diverged (the offset is in the text of
// its error, rdkafka_offset.c). A probe — a consumer of its own with the consumer's settings and
// auto.offset.reset=earliest — is given the same position and epoch: librdkafka's check then moves it to where the
// logs diverged (or to the log start when the leader knows no epoch up to strait's), and its first record or
// end-of-partition event names that offset (ProbeAnswer()).
bool Forwarder::StartProbe(PartitionState* p, std::string* why) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_dup(probe_conf_.get());
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    *why = errstr;
    return false;
  }
  Probe probe(rk);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
  tp->offset = p->gap_offset;
  rd_kafka_topic_partition_set_leader_epoch(tp, p->gap_epoch);
  rd_kafka_error_t* err = rd_kafka_incremental_assign(rk, list);
  // as in Assign(): the seek makes librdkafka check the epoch before the first fetch
  if (err == nullptr) err = rd_kafka_seek_partitions(rk, list, 0);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != nullptr) {
    *why = std::string(rd_kafka_error_name(err)) + ": " + rd_kafka_error_string(err);
    rd_kafka_error_destroy(err);
    return false;
  }
  p->probe = std::move(probe);
  p->probe_deadline_ms = NowMs() + kProbeTimeoutMs;
  return true;
}

// The offset the probe reached: its first record's, or its end-of-partition event's (the log ends there); -1 while it
// has neither. `last_error` keeps the newest error it reported.
int64_t Forwarder::ProbeAnswer(PartitionState* p, std::string* last_error) {
  for (;;) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(p->probe.get(), 0);
    if (m == nullptr) return -1;
    int64_t at = -1;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at = m->offset;
    } else {
      *last_error = ErrName(m->err) + ": " + rd_kafka_message_errstr(m);
    }
    rd_kafka_message_destroy(m);
    if (at >= 0) return at;
  }
}

// Where a partition goes on after librdkafka stopped its fetch (_AUTO_OFFSET_RESET). Below the log start, retention
// (or deleteRecords) removed records strait never read: they are counted as skipped and the partition goes on from
// the log start (or stops, onGap=stop). A log truncated below the offset strait wanted (an unclean leader election:
// the leader epoch check found the log diverged, or the offset is above the log end) goes on where the leader's log
// diverged from what strait read, which a probe finds (StartProbe()): the records a new leader took from there on are
// new ones, and are replicated. Without the leader epoch of its position strait cannot ask: it goes on from the log
// end (or its own offset, when the log has grown past it again). Inside the watermarks the log start moved between
// the fetch and the query: tried again at the same offset a few times.
void Forwarder::ResolveGaps() {
  if (!pending_.empty()) return;  // records of the partition queued before the gap must be handed over first
  int64_t now = NowMs();
  // a probe is a client with its own threads: an election that truncated many partitions asks for a few at a time
  int probes = 0;
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) probes += e.second->probe ? 1 : 0;
  }
  auto start_probe = [&](PartitionState* p, const std::string& where) {
    if (probes >= kMaxProbes) {  // asked once a running probe has answered
      p->gap_next_try_ms = now + 200;
      return;
    }
    std::string why;
    if (StartProbe(p, &why)) {
      probes++;
    } else {
      NoteSourceError(p, RD_KAFKA_RESP_ERR__FAIL, where + "; cannot ask where the leader's log diverged: " + why);
      p->gap_next_try_ms = now + 1000;
    }
  };
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) {
      PartitionState* p = e.second.get();
      if (!p->gap_pending || !p->assigned || p->errored || now < p->gap_next_try_ms) continue;
      int64_t from = p->gap_offset;
      std::string where = "source " + p->topic + "[" + std::to_string(p->partition) + "]: offset " + std::to_string(from);
      GapEvent gap{"truncation", from, from, 0, false};
      bool askable = from >= 0 && p->gap_epoch >= 0;  // a probe needs the position's leader epoch
      if (p->probe) {
        std::string last_error;
        int64_t at = ProbeAnswer(p, &last_error);
        if (at < 0) {
          if (now < p->probe_deadline_ms) continue;
          p->probe.reset();
          probes--;
          NoteSourceError(p, RD_KAFKA_RESP_ERR__TIMED_OUT,
                          where + " is past a truncation of the source's log, and the leader did not say within " +
                              std::to_string(kProbeTimeoutMs / 1000) + " s where its log diverged" +
                              (last_error.empty() ? "" : ": " + last_error));
          p->gap_next_try_ms = now + 1000;
          continue;
        }
        p->probe.reset();
        probes--;
        gap.to = at;
        // past `from` only when the leader knows no epoch up to strait's: its log starts after what strait read
        gap.skipped = std::max<int64_t>(0, at - from);
        where += " is past where the leader's log diverged from what strait read, at offset " + std::to_string(at);
      } else if (askable && p->gap_diverged) {
        start_probe(p, where + " is past where the leader's log diverged");
        continue;
      } else {
        int64_t low = -1, high = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(consumer_, p->topic.c_str(), p->partition, &low, &high, kWatermarkTimeoutMs);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          NoteSourceError(p, err, where + " is out of range and the watermarks cannot be read: " + rd_kafka_err2str(err));
          p->gap_next_try_ms = now + 1000;
          continue;
        }
        if (p->gap_logical != 0) {
          // the logical start again, as a concrete offset: nothing is skipped (earliest is the log start; latest is
          // where a start at 'latest' begins anyway)
          int64_t at = p->gap_logical == RD_KAFKA_OFFSET_BEGINNING ? low : high;
          std::string why;
          if (Restart(p, at, &why)) {
            p->gap_pending = false;
            p->gap_logical = 0;
          } else {
            p->gap_next_try_ms = now + 1000;
            NoteSourceError(p, RD_KAFKA_RESP_ERR__FAIL, where + ": cannot start the fetch at offset " + std::to_string(at) + ": " + why);
          }
          continue;
        }
        if (p->gap_diverged || from < 0) {
          // diverged without an epoch of ours, or before anything was read here (a logical start): the log end
          gap.to = from < 0 ? high : std::min(from, high);
          where += " is past where the leader's log diverged (leader epoch check)";
        } else if (from < low) {
          gap.reason = "retention";
          gap.to = low;
          gap.skipped = low - from;
          where += " is below the log start " + std::to_string(low);
        } else if (from > high && askable) {
          start_probe(p, where + " is above the log end " + std::to_string(high));
          continue;
        } else if (from > high) {
          gap.to = high;
          where += " is above the log end " + std::to_string(high);
        } else if (++p->gap_retries <= kGapRetries) {
          p->gap_pending = false;
          std::string why;
          if (!Restart(p, from, &why)) FailPartition(p, "OFFSET_OUT_OF_RANGE", "source " + p->topic + "[" + std::to_string(p->partition) + "]: cannot restart the fetch: " + why, "gap");
          continue;
        } else {
          FailPartition(p, "OFFSET_OUT_OF_RANGE",
                        where + " is reported out of range although it lies within the log [" + std::to_string(low) + ", " +
                            std::to_string(high) + ")",
                        "gap");
          continue;
        }
      }
      p->gap_pending = false;
      p->gap_retries = 0;
      p->gap_diverged = false;
      if (stop_on_gap_) {
        gap.stopped = true;
        p->gaps.push_back(gap);
        FailPartition(p, "OFFSET_OUT_OF_RANGE", where + " (onGap: stop)", "gap");
        continue;
      }
      std::string why;
      if (!Restart(p, gap.to, &why)) {
        p->gap_pending = true;
        p->gap_next_try_ms = now + 1000;
        NoteSourceError(p, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, where + "; cannot restart the fetch: " + why);
        continue;
      }
      p->gaps.push_back(gap);
    }
  }
}

}  // namespace strait
