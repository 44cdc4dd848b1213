// The forwarder's data path: records from the source consumer to the target producer and back through delivery
// reports, the in-flight budget, pause/resume, and close. Setup, partition assignment, offset gaps and progress are in
// forwarder_setup.cc, forwarder_assign.cc, forwarder_gaps.cc and forwarder_progress.cc.
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

void Forwarder::CheckOpen(Napi::Env env) const {
  if (closed_) throw Napi::Error::New(env, "Forwarder is closed");
}

void Forwarder::OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  // Called from librdkafka threads: keep only the newest warning/error for progress() to report.
  if (level > 4) return;
  auto* self = static_cast<Forwarder*>(rd_kafka_opaque(rk));
  if (self == nullptr) return;
  std::lock_guard<std::mutex> lock(self->log_mutex_);
  self->last_log_ = std::string(rd_kafka_name(rk)) + " " + fac + ": " + buf;
}

void Forwarder::OnClientError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  // Served by the polls of the pump thread; the mutex keeps it safe should librdkafka call it from elsewhere.
  auto* self = static_cast<Forwarder*>(opaque);
  if (self == nullptr) return;
  std::lock_guard<std::mutex> lock(self->log_mutex_);
  ClientError e{ErrName(static_cast<rd_kafka_resp_err_t>(err)), reason};
  if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER) self->client_consumer_error_ = e;
  else self->client_producer_error_ = e;
}

Napi::Object Forwarder::ClientErrorToJs(Napi::Env env, const ClientError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", e.code);
  o.Set("message", e.message);
  return o;
}

PartitionState* Forwarder::Lookup(const char* topic, int32_t partition) {
  auto t = topics_.find(topic);
  if (t == topics_.end()) return nullptr;
  auto p = t->second->partitions.find(partition);
  return p == t->second->partitions.end() ? nullptr : p->second.get();
}

PartitionState* Forwarder::LookupConsumed(const rd_kafka_message_t* msg) {
  TopicState* ts;
  auto cached = source_rkt_cache_.find(msg->rkt);
  if (cached != source_rkt_cache_.end()) {
    ts = cached->second;
  } else {
    auto t = topics_.find(rd_kafka_topic_name(msg->rkt));
    if (t == topics_.end()) return nullptr;
    ts = t->second.get();
    source_rkt_cache_.emplace(msg->rkt, ts);
  }
  auto p = ts->partitions.find(msg->partition);
  return p == ts->partitions.end() ? nullptr : p->second.get();
}


// Returns false (and keeps ownership of msg) when the producer queue is full.
bool Forwarder::Forward(rd_kafka_message_t* msg) {
  PartitionState* p = LookupConsumed(msg);
  if (p == nullptr || !p->assigned || p->errored) {
    rd_kafka_message_destroy(msg);
    return true;
  }
  ClearSourceError(p);
  if (msg->offset >= p->event_offset) p->event_offset = -1;  // librdkafka's position is past this record: right again
  // A partition that started at a logical position (earliest, latest) has its concrete start offset from its first
  // record on: a restart (a new owner, or a new producer after a fatal error) goes on from there, never from `latest`.
  if (p->committable < 0 && p->inflight.empty()) {
    p->committable = msg->offset;
    // the epoch of the record at the start serves KIP-320's check as well: its epoch's log reaches past it
    p->committable_epoch = rd_kafka_message_leader_epoch(msg);
    if (p->txn_committed < 0) {
      p->txn_committed = p->committable;
      p->txn_committed_epoch = p->committable_epoch;
    }
  }
  rd_kafka_headers_t* src_headers = nullptr;
  rd_kafka_message_headers(msg, &src_headers);
  rd_kafka_headers_t* headers = nullptr;
  if (provenance_.enabled) {
    std::string origin = provenance_.local_origin;
    int hops = 0;
    const void* val = nullptr;
    size_t size = 0;
    if (src_headers != nullptr &&
        rd_kafka_header_get_last(src_headers, provenance_.header.c_str(), &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        val != nullptr) {
      // value: "<origin cluster id>:<hops>"
      std::string v(static_cast<const char*>(val), size);
      size_t colon = v.rfind(':');
      origin = v.substr(0, colon);
      hops = colon == std::string::npos ? 0 : std::atoi(v.c_str() + colon + 1);
    }
    if (origin == provenance_.drop_origin || hops >= provenance_.max_hops) {
      // The record came from the target (or has gone round too often): forwarding it would make a loop. It counts
      // as handled so `committable` moves past it.
      p->dropped++;
      if (p->inflight.empty()) {
        p->committable = msg->offset + 1;
        p->committable_epoch = rd_kafka_message_leader_epoch(msg);
      } else {
        p->inflight.push_back(InFlight{msg->offset, nullptr, rd_kafka_message_leader_epoch(msg)});
      }
      p->consumed_next = msg->offset + 1;
      p->consumed_epoch = rd_kafka_message_leader_epoch(msg);
      rd_kafka_message_destroy(msg);
      return true;
    }
    headers = src_headers != nullptr ? rd_kafka_headers_copy(src_headers) : rd_kafka_headers_new(1);
    rd_kafka_header_remove(headers, provenance_.header.c_str());
    std::string v = origin + ":" + std::to_string(hops + 1);
    rd_kafka_header_add(headers, provenance_.header.c_str(), -1, v.data(), static_cast<ssize_t>(v.size()));
  } else if (src_headers != nullptr) {
    headers = rd_kafka_headers_copy(src_headers);
  }
  if (transactional_ && !txn_open_ && !BeginTransaction()) {
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return false;  // kept for later; Pump() reports the failed transaction and this forwarder is closed
  }
  rd_kafka_timestamp_type_t tstype;
  int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_, RD_KAFKA_V_RKT(p->topic_state->target_rkt), RD_KAFKA_V_PARTITION(msg->partition),
      RD_KAFKA_V_MSGFLAGS(0),  // no copy, no free: the consumed message owns the bytes until the delivery report
      RD_KAFKA_V_VALUE(msg->payload, msg->len), RD_KAFKA_V_KEY(msg->key, msg->key_len),
      RD_KAFKA_V_TIMESTAMP(ts > 0 ? ts : 0), RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(msg), RD_KAFKA_V_END);
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return false;
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    FailPartition(p, ErrName(err),
                  "cannot produce offset " + std::to_string(msg->offset) + " to " + p->topic_state->target + "[" +
                      std::to_string(msg->partition) + "]: " + rd_kafka_err2str(err),
                  ProducerFailed(err) ? "producer" : "target");
    rd_kafka_message_destroy(msg);
    return true;
  }
  int64_t size = static_cast<int64_t>(msg->len + msg->key_len);
  p->inflight.push_back(InFlight{msg->offset, msg, rd_kafka_message_leader_epoch(msg)});
  p->inflight_bytes += size;
  inflight_bytes_ += size;
  txn_bytes_ += size;
  p->consumed_next = msg->offset + 1;
  p->consumed_epoch = rd_kafka_message_leader_epoch(msg);
  return true;
}

void Forwarder::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<Forwarder*>(opaque)->Delivered(msg);
}

void Forwarder::Delivered(const rd_kafka_message_t* dr) {
  auto* consumed = static_cast<rd_kafka_message_t*>(dr->_private);
  if (consumed == nullptr) return;  // an offset-map record of a transaction (forwarder_txn.cc): its commit tells
  auto* ts = static_cast<TopicState*>(rd_kafka_topic_opaque(dr->rkt));
  auto pit = ts->partitions.find(consumed->partition);
  if (pit == ts->partitions.end()) {  // cannot happen: states live as long as they have records in flight
    rd_kafka_message_destroy(consumed);
    return;
  }
  PartitionState* p = pit->second.get();
  // A record the producer gave up on (purged after a fatal error, or by close()) was not delivered, but records before
  // it may still be: after a fatal error librdkafka purges the queue at once and answers the requests already sent
  // later, so their reports come after the purged ones. `committable` goes on over what was delivered and stops at
  // the first record that was not (see the loop below), which the next forwarder reads again.
  bool lost = dr->err != RD_KAFKA_RESP_ERR_NO_ERROR && ProducerFailed(dr->err);
  if (dr->err != RD_KAFKA_RESP_ERR_NO_ERROR && !(lost && closed_)) {
    FailPartition(p, ErrName(dr->err),
                  (lost ? "the target producer failed fatally before offset " : "target rejected offset ") +
                      std::to_string(consumed->offset) + " of " + p->topic + "[" + std::to_string(p->partition) +
                      "] -> " + ts->target + ": " + rd_kafka_err2str(dr->err),
                  lost ? "producer" : "target");
  }
  // Mark this record done, then advance `committable` over the done prefix. The idempotent producer reports in
  // order, so normally the record is at the front. A record that failed is never passed over, whatever the kind of
  // the partition's first error: after a fatal error (kind "producer") a purged record can be reported before an
  // earlier record's own failure.
  for (auto& entry : p->inflight) {
    if (entry.msg == consumed) {
      entry.msg = dr->err != RD_KAFKA_RESP_ERR_NO_ERROR ? NotDelivered() : nullptr;
      break;
    }
  }
  if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (consumed->offset + 1 > p->delivered_next) p->delivered_next = consumed->offset + 1;
    // a second copy on the target: counted when it lands, not when retryTarget() reads again (a retry refused again
    // may stop the partition before it reaches the records past the refused one)
    if (p->acked_ahead.erase(consumed->offset) > 0) p->resent++;
    if (p->errored && p->error_kind == "target") p->acked_ahead.insert(consumed->offset);
    if (p->retrying && !p->errored) {
      // retryTarget(): the refused record (or a later one) went through: the cause is gone
      p->retrying = false;
      p->error.clear();
      p->error_code.clear();
      p->error_kind.clear();
    }
    int64_t key_bytes = static_cast<int64_t>(consumed->key_len);
    size_t hdr_bytes = 0;
    rd_kafka_headers_t* h = nullptr;
    if (rd_kafka_message_headers(consumed, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h != nullptr) {
      const char* name;
      const void* val;
      size_t sz;
      for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &sz) == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        hdr_bytes += std::strlen(name) + sz;
      }
    }
    p->records++;
    p->bytes += static_cast<int64_t>(consumed->len) + key_bytes + static_cast<int64_t>(hdr_bytes);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts_ms = rd_kafka_message_timestamp(consumed, &tstype);
    if (ts_ms > 0) {
      p->last_ts = ts_ms;
      double lat = static_cast<double>(NowMs() - ts_ms);
      if (lat < 0) lat = 0;
      int b = 0;
      while (b < kBuckets && lat > latency_bounds_[b]) b++;
      latency_counts_[b]++;
      latency_sum_ms_ += lat;
    }
    // offset map: extend the open run when this record directly follows it on both sides (same delta, next source
    // offset), else close it and open a new one. A gap on either side starts a new run, so a run never spans a source
    // offset that does not exist or a target record that is not a replica (written there directly).
    int64_t delta = dr->offset - consumed->offset;
    if (p->has_run && p->run.delta == delta && consumed->offset == p->run.src_end + 1) {
      p->run.src_end = consumed->offset;
    } else {
      if (p->has_run) p->closed_runs.push_back(p->run);
      p->run = OffsetRun{consumed->offset, consumed->offset, delta};
      p->has_run = true;
    }
    p->run_dirty = true;
    if (transactional_) NoteTransactionRun(p, consumed->offset, delta);
  }
  // An errored partition keeps `committable` at the first record that failed.
  while (!p->inflight.empty() && (p->inflight.front().msg == nullptr || p->inflight.front().msg == NotDelivered())) {
    if (p->inflight.front().msg == NotDelivered()) p->undelivered = true;
    bool target_refused = p->errored && p->error_kind != "producer";
    if (!target_refused && !p->undelivered) {
      if (p->inflight.front().offset + 1 < p->committable) p->rewound = true;  // a gap's placeholder below it
      p->committable = p->inflight.front().offset + 1;
      p->committable_epoch = p->inflight.front().leader_epoch;
    }
    p->inflight.pop_front();
  }
  while (!p->acked_ahead.empty() && *p->acked_ahead.begin() < p->committable) p->acked_ahead.erase(p->acked_ahead.begin());
  Release(p, consumed);
}

void Forwarder::ApplyBudget() {
  // Hysteresis: pause at the budget, resume once half of it has drained.
  bool pause = over_budget_ ? inflight_bytes_ > budget_bytes_ / 2 : inflight_bytes_ >= budget_bytes_;
  if (pause == over_budget_) return;
  over_budget_ = pause;
  std::vector<PartitionState*> all;
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) all.push_back(e.second.get());
  }
  SetPaused(all, pause);
}

void Forwarder::SetPaused(const std::vector<PartitionState*>& parts, bool pause) {
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()) + 1);
  for (PartitionState* p : parts) {
    if (!p->assigned || p->errored) continue;
    p->budget_paused = pause;
    rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
  }
  if (list->cnt > 0) {
    if (pause) rd_kafka_pause_partitions(consumer_, list);
    else rd_kafka_resume_partitions(consumer_, list);
  }
  rd_kafka_topic_partition_list_destroy(list);
  if (pause) RestoreFetchPositions(parts);
}

// After a pause (SetPaused()): a partition whose librdkafka position went one past an event (PartitionState::
// event_offset) is put back where its fetch stands. The seek is queued behind the pause, so the fetch resumes there;
// without a leader epoch: a pause is no new position, nothing to check against the leader's log.
void Forwarder::RestoreFetchPositions(const std::vector<PartitionState*>& parts) {
  bool any = false;
  for (PartitionState* p : parts) any = any || (p->budget_paused && p->event_offset >= 0);
  if (!any) return;
  // records taken from librdkafka but not yet handed to the producer moved its position legitimately
  for (rd_kafka_message_t* msg : pending_) {
    PartitionState* p = LookupConsumed(msg);
    if (p != nullptr && msg->offset >= p->event_offset) p->event_offset = -1;
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(parts.size()) + 1);
  std::vector<PartitionState*> moved;
  for (PartitionState* p : parts) {
    if (!p->budget_paused || p->event_offset < 0) continue;
    rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition)->offset = p->event_offset;
    p->event_offset = -1;
    moved.push_back(p);
  }
  rd_kafka_error_t* err = list->cnt > 0 ? rd_kafka_seek_partitions(consumer_, list, 0) : nullptr;
  for (int i = 0; i < list->cnt; i++) {
    rd_kafka_resp_err_t code = err != nullptr ? rd_kafka_error_code(err) : list->elems[i].err;
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    PartitionState* p = moved[static_cast<size_t>(i)];
    NoteSourceError(p, code,
                    "source " + p->topic + "[" + std::to_string(p->partition) + "]: cannot put the fetch back at offset " +
                        std::to_string(list->elems[i].offset) + " after a pause: " +
                        (err != nullptr ? rd_kafka_error_string(err) : rd_kafka_err2str(code)));
  }
  if (err != nullptr) rd_kafka_error_destroy(err);
  rd_kafka_topic_partition_list_destroy(list);
}

// pump(maxWaitMs) -> records handed to the producer. Consumes one batch, forwards it, serves delivery reports.
Napi::Value Forwarder::Pump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 100;
  rd_kafka_poll(producer_, 0);
  // A fatal error of the idempotent producer (librdkafka: it can no longer guarantee order or no duplicates, e.g. an
  // OUT_OF_ORDER_SEQUENCE_NUMBER it cannot recover from) ends this producer for good: every later record would fail.
  // Nothing more is read; the caller closes this forwarder and starts its partitions in a new one (worker/pump.ts).
  if (rd_kafka_fatal_error(producer_, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) return Napi::Number::New(env, -1);
  // a failed transaction (forwarder_txn.cc) ends this forwarder the same way: it restarts from the last committed one
  if (txn_failed_) return Napi::Number::New(env, -1);
  // exactly-once: nothing is read before init_transactions completed; meanwhile this waits no longer than a forwarder
  // without records would, so the pool thread's other forwarders go on
  if (transactional_ && !ContinueTransactionInit()) {
    if (txn_failed_) return Napi::Number::New(env, -1);
    rd_kafka_poll(producer_, static_cast<int>(std::min<int64_t>(timeout, kTxnInitRetryMs)));
    return Napi::Number::New(env, 0);
  }
  // Producer queue was full last time: those records go first, in order.
  while (!pending_.empty()) {
    if (!Forward(pending_.front())) break;
    pending_.pop_front();
  }
  ApplyBudget();
  int forwarded = 0;
  if (!pending_.empty() || over_budget_) {
    rd_kafka_poll(producer_, timeout);  // wait for acknowledgements instead of reading more
  } else {
    // Take what is there without waiting; only when nothing is, wait for the first record and then take what
    // arrived with it. (consume_batch with a timeout would hold records until the batch fills or the time passes.)
    ssize_t n = rd_kafka_consume_batch_queue(consumer_queue_, 0, batch_.data(), batch_.size());
    if (n == 0 && timeout > 0) {
      rd_kafka_message_t* first = rd_kafka_consume_queue(consumer_queue_, timeout);
      if (first != nullptr) {
        batch_[0] = first;
        ssize_t more = rd_kafka_consume_batch_queue(consumer_queue_, 0, batch_.data() + 1, batch_.size() - 1);
        n = 1 + (more > 0 ? more : 0);
      }
    }
    for (ssize_t i = 0; i < n; i++) {
      rd_kafka_message_t* msg = batch_[static_cast<size_t>(i)];
      if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        // Fetch errors carry their topic and partition (librdkafka's rd_kafka_consumer_err with the toppar); only
        // errors of the client as a whole come without.
        PartitionState* p = msg->rkt != nullptr && msg->partition >= 0 ? LookupConsumed(msg) : nullptr;
        if (p != nullptr && !p->assigned) p = nullptr;
        // _AUTO_OFFSET_RESET stopped the fetch: the partition is assigned again (Restart()), which sets the position
        if (p != nullptr && msg->offset >= 0 && msg->err != RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET &&
            (p->event_offset < 0 || msg->offset < p->event_offset)) {
          p->event_offset = msg->offset;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          if (p != nullptr) ClearSourceError(p);
        } else if (p != nullptr && msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
          p->gap_pending = true;
          // a logical offset: librdkafka's lookup of the partition's logical start failed for good (rdkafka_partition.c,
          // "Failed to query logical offset"); nothing was read yet, so nothing diverged
          p->gap_logical = msg->offset == RD_KAFKA_OFFSET_BEGINNING || msg->offset == RD_KAFKA_OFFSET_END ? msg->offset : 0;
          // without an offset: KIP-320's check found that the leader's log diverged below the position (librdkafka's
          // _LOG_TRUNCATION, rdkafka_offset.c, reset to INVALID under auto.offset.reset=error)
          p->gap_diverged = msg->offset < 0 && p->gap_logical == 0;
          p->gap_offset = msg->offset >= 0 ? msg->offset : p->consumed_next;
          p->gap_epoch = p->gap_offset == p->consumed_next ? p->consumed_epoch : -1;
          p->gap_next_try_ms = 0;
        } else if (p != nullptr) {
          NoteSourceError(p, msg->err, rd_kafka_message_errstr(msg));
        } else {
          consumer_error_ = ClientError{ErrName(msg->err), rd_kafka_message_errstr(msg)};
        }
        rd_kafka_message_destroy(msg);
        continue;
      }
      if (!pending_.empty() || !Forward(msg)) {
        pending_.push_back(msg);
      } else {
        forwarded++;
      }
    }
    rd_kafka_poll(producer_, 0);
  }
  ResolveGaps();
  ApplyBudget();
  return Napi::Number::New(env, forwarded);
}


// testFatalError(reason): FOR TESTS ONLY. Raises a fatal error (OUT_OF_ORDER_SEQUENCE_NUMBER) in this forwarder's
// producer through librdkafka's rd_kafka_test_fatal_error(), as the idempotent producer raises one when it cannot
// keep its guarantees — which no real broker does on demand. Refused unless the process runs with
// STRAIT_TEST_FAULTS=1. Returns librdkafka's answer (NO_ERROR, or _PREV_IN_PROGRESS when one was raised already).
Napi::Value Forwarder::TestFatalError(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  const char* enabled = std::getenv("STRAIT_TEST_FAULTS");
  if (enabled == nullptr || std::string(enabled) != "1") {
    throw Napi::Error::New(env, "testFatalError: fault injection is for tests only (STRAIT_TEST_FAULTS=1)");
  }
  std::string reason = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "injected";
  rd_kafka_resp_err_t err = rd_kafka_test_fatal_error(producer_, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason.c_str());
  return Napi::String::New(env, ErrName(err));
}

// close(flushTimeoutMs): waits for in-flight records up to the timeout, then purges the rest (they stay
// uncommitted, so they are read again by the next owner).
Napi::Value Forwarder::Close(const Napi::CallbackInfo& info) {
  int timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 10000;
  Shutdown(timeout);
  return info.Env().Undefined();
}

void Forwarder::Shutdown(int timeout_ms) {
  if (closed_) return;
  closed_ = true;
  for (auto* msg : pending_) rd_kafka_message_destroy(msg);
  pending_.clear();
  if (producer_ != nullptr) {
    // an open transaction is aborted rather than left to transaction.timeout.ms: read_committed consumers of the
    // target wait at its first record until it ends (the next owner's init_transactions would also abort it)
    if (txn_open_) {
      rd_kafka_error_t* aborted = rd_kafka_abort_transaction(producer_, kTxnAbortTimeoutMs);
      if (aborted != nullptr) rd_kafka_error_destroy(aborted);
      txn_open_ = false;
    } else if (timeout_ms > 0) {
      rd_kafka_flush(producer_, timeout_ms);
    }
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    // purged records come back as failed delivery reports and are released there
    for (int i = 0; i < 200 && rd_kafka_outq_len(producer_) > 0; i++) rd_kafka_poll(producer_, 10);
    for (auto& t : topics_) {
      if (t.second->target_rkt != nullptr) rd_kafka_topic_destroy(t.second->target_rkt);
      t.second->target_rkt = nullptr;
    }
    rd_kafka_destroy(producer_);
    producer_ = nullptr;
  }
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) e.second->probe.reset();
  }
  if (consumer_ != nullptr) {
    if (consumer_queue_ != nullptr) rd_kafka_queue_destroy(consumer_queue_);
    consumer_queue_ = nullptr;
    rd_kafka_consumer_close(consumer_);
    rd_kafka_destroy(consumer_);
    consumer_ = nullptr;
  }
  // Partition states stay readable: progress() after close() reports the final committable offsets.
  source_rkt_cache_.clear();
}

}  // namespace strait
