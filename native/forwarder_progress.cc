// What the forwarder reports to its pool thread (progress: counters, runs, gaps, errors; deltas since the last call)
// and the mirror of commits into the source group.
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

// progress() -> { partitions: [...], latency: { counts, sumMs }, inflightBytes, pending, errors }
// Counters and runs are deltas since the previous call.
Napi::Value Forwarder::Progress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array parts = Napi::Array::New(env);
  uint32_t idx = 0;
  std::vector<std::pair<std::string, int32_t>> forget;
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) {
      PartitionState* p = e.second.get();
      Napi::Object o = Napi::Object::New(env);
      o.Set("topic", p->topic);
      o.Set("partition", p->partition);
      o.Set("targetTopic", t.second->target);
      // transactional: what the target committed, never what it merely acknowledged inside an open transaction
      int64_t committable = transactional_ ? p->txn_committed : p->committable;
      int32_t committable_epoch = transactional_ ? p->txn_committed_epoch : p->committable_epoch;
      o.Set("committable", Napi::Number::New(env, static_cast<double>(committable)));
      if (p->delivered_next >= 0) o.Set("deliveredNext", Napi::Number::New(env, static_cast<double>(p->delivered_next)));
      if (p->resent > 0) o.Set("resent", Napi::Number::New(env, static_cast<double>(p->resent)));
      p->resent = 0;
      if (committable >= 0 && committable_epoch >= 0) o.Set("committableLeaderEpoch", committable_epoch);
      if (p->rewound) o.Set("rewound", true);
      p->rewound = false;
      o.Set("records", Napi::Number::New(env, static_cast<double>(p->records)));
      o.Set("bytes", Napi::Number::New(env, static_cast<double>(p->bytes)));
      o.Set("dropped", Napi::Number::New(env, static_cast<double>(p->dropped)));
      o.Set("inflight", Napi::Number::New(env, static_cast<double>(p->inflight.size())));
      o.Set("inflightBytes", Napi::Number::New(env, static_cast<double>(p->inflight_bytes)));
      o.Set("lastTimestamp", Napi::Number::New(env, static_cast<double>(p->last_ts)));
      o.Set("assigned", p->assigned);
      o.Set("paused", p->budget_paused || p->errored);
      int64_t low = 0, high = -1;
      if (p->assigned && consumer_ != nullptr && rd_kafka_get_watermark_offsets(consumer_, p->topic.c_str(), p->partition, &low, &high) ==
                             RD_KAFKA_RESP_ERR_NO_ERROR) {
        o.Set("highWatermark", Napi::Number::New(env, static_cast<double>(high)));
      }
      if (p->errored || p->retrying) {
        o.Set("error", p->error);
        o.Set("errorCode", p->error_code);
        o.Set("errorKind", p->error_kind);
      } else if (p->source_errored) {
        o.Set("error", p->source_error);
        o.Set("errorCode", p->source_error_code);
        o.Set("errorKind", "source");
      }
      if (!p->gaps.empty()) {
        Napi::Array gaps = Napi::Array::New(env, p->gaps.size());
        uint32_t g = 0;
        for (const auto& gap : p->gaps) {
          Napi::Object go = Napi::Object::New(env);
          go.Set("reason", gap.reason);
          go.Set("from", Napi::Number::New(env, static_cast<double>(gap.from)));
          go.Set("to", Napi::Number::New(env, static_cast<double>(gap.to)));
          go.Set("skipped", Napi::Number::New(env, static_cast<double>(gap.skipped)));
          go.Set("stopped", gap.stopped);
          gaps.Set(g++, go);
        }
        o.Set("gaps", gaps);
        p->gaps.clear();
      }
      Napi::Array runs = Napi::Array::New(env);
      uint32_t r = 0;
      auto put = [&](const OffsetRun& run) {
        Napi::Array a = Napi::Array::New(env, 3);
        a.Set(0u, Napi::Number::New(env, static_cast<double>(run.src_start)));
        a.Set(1u, Napi::Number::New(env, static_cast<double>(run.src_end)));
        a.Set(2u, Napi::Number::New(env, static_cast<double>(run.delta)));
        runs.Set(r++, a);
      };
      for (const auto& run : p->closed_runs) put(run);
      if (p->run_dirty) put(p->run);
      o.Set("runs", runs);
      p->closed_runs.clear();
      p->run_dirty = false;
      p->records = 0;
      p->bytes = 0;
      p->dropped = 0;
      parts.Set(idx++, o);
      if (!p->assigned && p->inflight.empty()) forget.emplace_back(p->topic, p->partition);
    }
  }
  // an unassigned partition with nothing in flight has reported its final state above
  if (!closed_) {
    for (auto& f : forget) topics_[f.first]->partitions.erase(f.second);
  }
  out.Set("partitions", parts);
  Napi::Array counts = Napi::Array::New(env, kBuckets + 1);
  for (int b = 0; b <= kBuckets; b++) {
    counts.Set(static_cast<uint32_t>(b), Napi::Number::New(env, static_cast<double>(latency_counts_[b])));
    latency_counts_[b] = 0;
  }
  Napi::Object latency = Napi::Object::New(env);
  latency.Set("counts", counts);
  latency.Set("sumMs", latency_sum_ms_);
  latency_sum_ms_ = 0;
  out.Set("latency", latency);
  out.Set("inflightBytes", Napi::Number::New(env, static_cast<double>(inflight_bytes_)));
  out.Set("pending", Napi::Number::New(env, static_cast<double>(pending_.size())));
  out.Set("overBudget", over_budget_);
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (consumer_error_.empty() && !client_consumer_error_.empty()) consumer_error_ = client_consumer_error_;
    if (!client_producer_error_.empty()) out.Set("producerError", ClientErrorToJs(env, client_producer_error_));
    client_consumer_error_.clear();
    client_producer_error_.clear();
  }
  if (!consumer_error_.empty()) out.Set("consumerError", ClientErrorToJs(env, consumer_error_));
  consumer_error_.clear();
  char fatal[512];
  rd_kafka_resp_err_t fatal_err = producer_ != nullptr ? rd_kafka_fatal_error(producer_, fatal, sizeof(fatal)) : RD_KAFKA_RESP_ERR_NO_ERROR;
  if (fatal_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    out.Set("fatal", std::string(fatal));
    out.Set("fatalCode", ErrName(fatal_err));
  } else if (txn_failed_) {
    out.Set("fatal", txn_error_.message);
    out.Set("fatalCode", txn_error_.code);
  }
  if (txn_outcome_unknown_) out.Set("txnOutcomeUnknown", true);
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (!last_log_.empty()) out.Set("log", last_log_);
    last_log_.clear();
  }
  return out;
}

// commit([{ topic, partition, offset }]): mirrors committed offsets to the source cluster's consumer group
// (asynchronous; the store is the source of truth, this is for standard Kafka lag tooling).
Napi::Value Forwarder::Commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() == 0) return env.Undefined();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(arr.Length()));
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object a = arr.Get(i).As<Napi::Object>();
    rd_kafka_topic_partition_list_add(list, GetString(a, "topic", "").c_str(),
                                      static_cast<int32_t>(GetInt(a, "partition", 0)))
        ->offset = GetInt(a, "offset", 0);
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer_, list, 1);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) consumer_error_ = ClientError{ErrName(err), std::string("committing to the source group: ") + rd_kafka_err2str(err)};
  return env.Undefined();
}

}  // namespace strait
