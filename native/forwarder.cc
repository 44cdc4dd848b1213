#include "forwarder.h"

#include "conf.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace strait {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ErrName(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

// Consumer errors that retrying the same fetch does not fix: the partition is errored at the first one. Others
// (transport, leader changes) error it only when they repeat without a record in between.
bool NotFixedByRetry(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__NOT_IMPLEMENTED:  // librdkafka built without the batch's compression codec
    case RD_KAFKA_RESP_ERR__BAD_COMPRESSION:
    case RD_KAFKA_RESP_ERR__BAD_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:  // Kafka CORRUPT_MESSAGE
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_COMPRESSION_TYPE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return true;
    default:
      return false;
  }
}

// Marks an in-flight entry whose record the producer gave up on (never dereferenced).
rd_kafka_message_t* NotDelivered() {
  static rd_kafka_message_t marker;
  return &marker;
}

// Delivery failures that are the producer's, not the target's verdict on the record: the fatal error of the
// idempotent producer and the purges that follow it (or close()).
bool ProducerFailed(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

constexpr int kSourceErrorRepeats = 3;
constexpr int kGapRetries = 3;
constexpr int kWatermarkTimeoutMs = 5000;
// how long a probe may take to find where a truncated log diverged before it is tried again (StartProbe())
constexpr int64_t kProbeTimeoutMs = 30000;
constexpr int kMaxProbes = 4;  // probes running at once in one forwarder

std::string GetString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

int64_t GetInt(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

// Forwarder options arrive complete: TypeScript validates them and fills every default (native/index.ts
// forwarderOptions); a missing one is a programming error, named here rather than replaced by a second default.
std::string RequireString(const Napi::Env& env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(env, std::string("Forwarder: option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int64_t RequireInt(const Napi::Env& env, const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("Forwarder: option '") + key + "' must be a number");
  return v.As<Napi::Number>().Int64Value();
}

}  // namespace

Napi::Function Forwarder::Define(Napi::Env env) {
  return DefineClass(env, "Forwarder",
                     {
                         InstanceMethod<&Forwarder::Assign>("assign"),
                         InstanceMethod<&Forwarder::Unassign>("unassign"),
                         InstanceMethod<&Forwarder::Pump>("pump"),
                         InstanceMethod<&Forwarder::Progress>("progress"),
                         InstanceMethod<&Forwarder::Commit>("commit"),
                         InstanceMethod<&Forwarder::Close>("close"),
                         InstanceMethod<&Forwarder::TestFatalError>("testFatalError"),
                         InstanceMethod<&Forwarder::RetryTarget>("retryTarget"),
                     });
}

// new Forwarder({ consumer: {...}, producer: {...}, inflightBytes, batchSize, compression, provenance? })
Forwarder::Forwarder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Forwarder>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "Forwarder: options object required");
  Napi::Object opts = info[0].As<Napi::Object>();
  budget_bytes_ = RequireInt(env, opts, "inflightBytes");
  batch_size_ = static_cast<int>(RequireInt(env, opts, "batchSize"));
  default_codec_ = RequireString(env, opts, "compression");
  stop_on_gap_ = RequireString(env, opts, "onGap") == "stop";
  Napi::Value bounds = opts.Get("latencyBucketsMs");
  if (!bounds.IsArray() || bounds.As<Napi::Array>().Length() != kBuckets) {
    throw Napi::TypeError::New(env, "Forwarder: option 'latencyBucketsMs' must be an array of " + std::to_string(kBuckets) + " numbers");
  }
  for (uint32_t i = 0; i < kBuckets; i++) latency_bounds_[i] = bounds.As<Napi::Array>().Get(i).As<Napi::Number>().DoubleValue();
  if (opts.Get("provenance").IsObject()) {
    Napi::Object p = opts.Get("provenance").As<Napi::Object>();
    provenance_.enabled = true;
    provenance_.header = RequireString(env, p, "header");
    provenance_.local_origin = RequireString(env, p, "localOrigin");
    provenance_.drop_origin = RequireString(env, p, "dropOrigin");
    provenance_.max_hops = static_cast<int>(RequireInt(env, p, "maxHops"));
  }
  char errstr[512];

  rd_kafka_conf_t* cconf = rd_kafka_conf_new();
  // Defaults a forwarder depends on; the caller's properties come after and may override the tunables, but
  // auto commit and offset store stay off (commits are strait's, made only for acknowledged records).
  rd_kafka_conf_set(cconf, "isolation.level", "read_committed", errstr, sizeof(errstr));
  rd_kafka_conf_set(cconf, "check.crcs", "false", errstr, sizeof(errstr));
  // Nagle's algorithm holds small requests back for the peer's delayed ACK (tens of ms); Kafka's Java clients
  // always set TCP_NODELAY, librdkafka does not by default.
  rd_kafka_conf_set(cconf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
  // librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1 s by default) whenever the local
  // queue is over queued.max.messages.kbytes; a forwarder drains that queue continuously, so a 1 s pause only
  // starves it (measured: 52k -> 286k records/s on the bench topic with 2 threads).
  rd_kafka_conf_set(cconf, "fetch.queue.backoff.ms", "10", errstr, sizeof(errstr));
  try {
    if (opts.Get("consumer").IsObject()) ApplyProps(env, cconf, opts.Get("consumer").As<Napi::Object>(), "consumer");
  } catch (...) {
    rd_kafka_conf_destroy(cconf);
    throw;
  }
  rd_kafka_conf_set(cconf, "enable.auto.commit", "false", errstr, sizeof(errstr));
  rd_kafka_conf_set(cconf, "enable.auto.offset.store", "false", errstr, sizeof(errstr));
  // A committed offset outside the log (retention passed it, the log was truncated) must not be reset silently:
  // librdkafka then reports _AUTO_OFFSET_RESET and stops that partition's fetch, and ResolveGaps() decides with the
  // watermarks where to go on and counts what was skipped.
  rd_kafka_conf_set(cconf, "auto.offset.reset", "error", errstr, sizeof(errstr));
  // End-of-partition events tell a partition whose fetch failed (authorization) that fetching works again even when
  // no record arrives; each is sent once per offset reached, so they cost nothing on a busy partition.
  rd_kafka_conf_set(cconf, "enable.partition.eof", "true", errstr, sizeof(errstr));
  // A probe (StartProbe()) connects like the consumer, but lets librdkafka move to where the leader's log diverged
  // (the offset in KIP-320's OffsetsForLeaderEpoch answer, which under auto.offset.reset=error librdkafka gives only in
  // the text of its error, rdkafka_offset.c) and to the log start when the leader knows no epoch up to ours.
  probe_conf_.reset(rd_kafka_conf_dup(cconf));
  rd_kafka_conf_set(probe_conf_.get(), "auto.offset.reset", "earliest", errstr, sizeof(errstr));
  rd_kafka_conf_set(probe_conf_.get(), "queued.min.messages", "1", errstr, sizeof(errstr));
  rd_kafka_conf_set(probe_conf_.get(), "log_level", "0", errstr, sizeof(errstr));  // what it meets, it reports itself
  rd_kafka_conf_set_opaque(cconf, this);
  rd_kafka_conf_set_log_cb(cconf, &Forwarder::OnLog);
  // errors of the client as a whole (a broker down, all brokers down, a transport failure): without an error_cb
  // librdkafka only logs them, and strait must count and report them
  rd_kafka_conf_set_error_cb(cconf, &Forwarder::OnClientError);
  consumer_ = rd_kafka_new(RD_KAFKA_CONSUMER, cconf, errstr, sizeof(errstr));
  if (consumer_ == nullptr) {
    rd_kafka_conf_destroy(cconf);
    throw Napi::Error::New(env, std::string("consumer: ") + errstr);
  }
  rd_kafka_poll_set_consumer(consumer_);
  consumer_queue_ = rd_kafka_queue_get_consumer(consumer_);

  rd_kafka_conf_t* pconf = rd_kafka_conf_new();
  rd_kafka_conf_set(pconf, "enable.idempotence", "true", errstr, sizeof(errstr));
  rd_kafka_conf_set(pconf, "acks", "all", errstr, sizeof(errstr));
  // Never give up on a record while the target is down (KIP-91's delivery.timeout.ms has no infinite value in Java;
  // librdkafka's 0 is infinite). Memory stays bounded by the in-flight budget, which pauses the source partitions.
  rd_kafka_conf_set(pconf, "message.timeout.ms", "0", errstr, sizeof(errstr));
  // Let the broker judge record size (its max.message.bytes), so a too-large record fails loudly in the delivery
  // report rather than being pre-rejected with a client-side limit that differs from the target's.
  rd_kafka_conf_set(pconf, "message.max.bytes", "1000000000", errstr, sizeof(errstr));
  rd_kafka_conf_set(pconf, "linger.ms", "5", errstr, sizeof(errstr));
  rd_kafka_conf_set(pconf, "socket.nagle.disable", "true", errstr, sizeof(errstr));
  try {
    if (opts.Get("producer").IsObject()) ApplyProps(env, pconf, opts.Get("producer").As<Napi::Object>(), "producer");
  } catch (...) {
    rd_kafka_conf_destroy(pconf);
    Shutdown(0);
    throw;
  }
  rd_kafka_conf_set_opaque(pconf, this);
  rd_kafka_conf_set_dr_msg_cb(pconf, &Forwarder::OnDelivery);
  rd_kafka_conf_set_log_cb(pconf, &Forwarder::OnLog);
  rd_kafka_conf_set_error_cb(pconf, &Forwarder::OnClientError);
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, errstr, sizeof(errstr));
  if (producer_ == nullptr) {
    rd_kafka_conf_destroy(pconf);
    Shutdown(0);
    throw Napi::Error::New(env, std::string("producer: ") + errstr);
  }
  batch_.resize(static_cast<size_t>(batch_size_));
}

Forwarder::~Forwarder() { Shutdown(0); }

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

namespace {

struct AssignRequest {
  std::string topic;
  std::string target;
  std::string codec;
  int32_t partition;
  int64_t offset;
  int32_t leader_epoch;  // -1: none
};

Napi::Object AssignFailure(Napi::Env env, const AssignRequest& r, const std::string& code, const std::string& message) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("topic", r.topic);
  o.Set("partition", r.partition);
  o.Set("errorCode", code);
  o.Set("error", "assign " + r.topic + "[" + std::to_string(r.partition) + "]: " + message);
  return o;
}

}  // namespace

// assign([{ topic, partition, offset, targetTopic, compression? }]); offset: >= 0, -2 earliest, -1 latest.
// Returns the entries that did not start, as [{ topic, partition, errorCode, error }]; every other entry fetches.
// Every entry is checked before any state changes, so a refused entry leaves no half-made slot behind and holds no
// other entry back. A malformed argument (a caller's bug) throws a TypeError and changes nothing.
//
// A partition that is still draining here (unassigned, records in flight) is re-activated in place: its in-flight
// records complete and advance `committable` as before, and the fetch goes on after the last record handed to the
// producer (or at `offset`, when a newer owner committed past that meanwhile). Only a draining partition whose
// records the target refused is refused again until its last record in flight has come back.
Napi::Value Forwarder::Assign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "assign: array required");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<AssignRequest> requests;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    if (!arr.Get(i).IsObject()) throw Napi::TypeError::New(env, "assign: each entry must be an object");
    Napi::Object a = arr.Get(i).As<Napi::Object>();
    AssignRequest r{GetString(a, "topic", ""), GetString(a, "targetTopic", ""), GetString(a, "compression", default_codec_),
                    static_cast<int32_t>(GetInt(a, "partition", -1)), GetInt(a, "offset", RD_KAFKA_OFFSET_BEGINNING),
                    static_cast<int32_t>(GetInt(a, "leaderEpoch", -1))};
    if (r.topic.empty() || r.target.empty() || r.partition < 0) {
      throw Napi::TypeError::New(env, "assign: each entry needs topic, targetTopic and partition >= 0");
    }
    requests.push_back(std::move(r));
  }

  // 1. Check every entry; nothing changes yet.
  enum class Action { kSkip, kNew, kReactivate };
  Napi::Array failures = Napi::Array::New(env);
  uint32_t failed = 0;
  std::vector<Action> actions(requests.size(), Action::kSkip);
  std::map<std::string, bool> replace_topic;  // topic -> its TopicState is made again (target or codec changed)
  std::map<std::pair<std::string, int32_t>, bool> seen;
  std::map<std::string, std::pair<std::string, std::string>> wanted;  // topic -> (target, codec) of this call
  for (size_t i = 0; i < requests.size(); i++) {
    const AssignRequest& r = requests[i];
    if (seen[{r.topic, r.partition}]) continue;  // the same partition twice in one call
    seen[{r.topic, r.partition}] = true;
    char errstr[256];
    rd_kafka_topic_conf_t* probe = rd_kafka_topic_conf_new();
    bool codec_ok = rd_kafka_topic_conf_set(probe, "compression.codec", r.codec.c_str(), errstr, sizeof(errstr)) == RD_KAFKA_CONF_OK;
    rd_kafka_topic_conf_destroy(probe);
    if (!codec_ok) {
      failures.Set(failed++, AssignFailure(env, r, "_INVALID_ARG", std::string("compression: ") + errstr));
      continue;
    }
    // one target (and codec) per source topic: an entry naming another than an earlier one of this call is refused
    auto first = wanted.emplace(r.topic, std::make_pair(r.target, r.codec)).first;
    if (first->second.first != r.target || first->second.second != r.codec) {
      failures.Set(failed++, AssignFailure(env, r, "_INVALID_ARG",
                                           "another entry of the same assign sends " + r.topic + " to " + first->second.first));
      continue;
    }
    auto t = topics_.find(r.topic);
    PartitionState* slot = t == topics_.end() ? nullptr : Lookup(r.topic.c_str(), r.partition);
    if (t != topics_.end() && (t->second->target != r.target || t->second->codec != r.codec)) {
      // The route's naming or compression changed: the topic's producer handle is made again, which only works
      // once no partition of the topic is replicating (or reporting its last state) under the old one.
      if (!t->second->partitions.empty()) {
        failures.Set(failed++, AssignFailure(env, r, "_IN_PROGRESS",
                                             "partitions of " + r.topic + " still replicate to " + t->second->target + " (" +
                                                 t->second->codec + "); retried once they have stopped"));
        continue;
      }
      replace_topic[r.topic] = true;
      slot = nullptr;
    }
    if (slot != nullptr && slot->assigned) continue;  // already ours
    if (slot != nullptr && slot->errored && !slot->inflight.empty()) {
      failures.Set(failed++, AssignFailure(env, r, "_IN_PROGRESS",
                                           "still has " + std::to_string(slot->inflight.size()) +
                                               " records in flight from its previous assignment, which ended with " +
                                               slot->error_code + "; retried once they have come back"));
      continue;
    }
    actions[i] = slot != nullptr ? Action::kReactivate : Action::kNew;
  }

  // 2. Make the slots and start the fetch.
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(requests.size()) + 1);
  std::vector<PartitionState*> added;
  std::vector<bool> was_new;
  std::vector<size_t> added_index;
  for (size_t i = 0; i < requests.size(); i++) {
    if (actions[i] == Action::kSkip) continue;
    const AssignRequest& r = requests[i];
    auto& ts = topics_[r.topic];
    if (ts && replace_topic[r.topic]) {
      for (auto it = source_rkt_cache_.begin(); it != source_rkt_cache_.end();) {
        it = it->second == ts.get() ? source_rkt_cache_.erase(it) : std::next(it);
      }
      if (ts->target_rkt != nullptr) rd_kafka_topic_destroy(ts->target_rkt);
      ts.reset();
      replace_topic[r.topic] = false;
    }
    if (!ts) {
      ts = std::make_unique<TopicState>();
      ts->source = r.topic;
      ts->target = r.target;
      ts->codec = r.codec;
      rd_kafka_topic_conf_t* tconf = rd_kafka_topic_conf_new();
      char errstr[256];
      rd_kafka_topic_conf_set(tconf, "compression.codec", r.codec.c_str(), errstr, sizeof(errstr));  // checked above
      rd_kafka_topic_conf_set_opaque(tconf, ts.get());
      ts->target_rkt = rd_kafka_topic_new(producer_, r.target.c_str(), tconf);
      if (ts->target_rkt == nullptr) {
        failures.Set(failed++, AssignFailure(env, r, ErrName(rd_kafka_last_error()), "cannot make the target topic handle for " + r.target));
        topics_.erase(r.topic);
        continue;
      }
    }
    int64_t start = r.offset;
    PartitionState* p;
    if (actions[i] == Action::kReactivate) {
      p = ts->partitions[r.partition].get();
      p->retrying = false;
      if (p->errored) {
        // nothing in flight (checked above): start again after the last acknowledged record
        p->errored = false;
        p->error.clear();
        p->error_code.clear();
        p->error_kind.clear();
        if (p->committable >= 0) start = std::max(p->committable, r.offset);
      } else if (p->consumed_next >= 0) {
        start = std::max(p->consumed_next, r.offset);
      }
      if (start >= 0 && start != p->consumed_next) {
        if (p->inflight.empty()) {
          p->committable = start;
          p->committable_epoch = r.leader_epoch;
        } else {
          p->inflight.push_back(InFlight{start - 1, nullptr, r.leader_epoch});
        }
        p->consumed_next = start;
        p->consumed_epoch = start == r.offset ? r.leader_epoch : -1;
      }
      p->undelivered = false;
      p->budget_paused = false;
      p->gap_pending = false;
      p->gap_diverged = false;
      p->gap_retries = 0;
      p->probe.reset();
      ClearSourceError(p);
    } else {
      auto& slot = ts->partitions[r.partition];
      slot = std::make_unique<PartitionState>();
      p = slot.get();
      p->topic = r.topic;
      p->partition = r.partition;
      p->topic_state = ts.get();
      if (start >= 0) {
        p->committable = start;
        p->committable_epoch = r.leader_epoch;
        p->consumed_next = start;
        p->consumed_epoch = r.leader_epoch;
      }
    }
    p->assigned = true;
    rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(list, r.topic.c_str(), r.partition);
    tp->offset = start;
    // the epoch belongs to the offset it came with (the committed one), not to a position this forwarder moved on to
    if (start >= 0 && start == r.offset && r.leader_epoch >= 0) rd_kafka_topic_partition_set_leader_epoch(tp, r.leader_epoch);
    added.push_back(p);
    was_new.push_back(actions[i] == Action::kNew);
    added_index.push_back(i);
  }
  rd_kafka_error_t* err = list->cnt > 0 ? rd_kafka_incremental_assign(consumer_, list) : nullptr;
  rd_kafka_topic_partition_list_destroy(list);
  if (err != nullptr) {
    // None of them fetches: new slots go, re-activated ones drain on as before.
    std::string code = rd_kafka_error_name(err);
    std::string msg = rd_kafka_error_string(err);
    rd_kafka_error_destroy(err);
    for (size_t k = 0; k < added.size(); k++) {
      const AssignRequest& r = requests[added_index[k]];
      failures.Set(failed++, AssignFailure(env, r, code, "the consumer refused the assignment: " + msg));
      if (was_new[k]) topics_[r.topic]->partitions.erase(r.partition);
      else added[k]->assigned = false;
    }
    return failures;
  }
  // KIP-320: a position that carries its leader epoch is checked against the leader's log (OffsetsForLeaderEpoch)
  // before the first fetch. librdkafka runs that check on a seek, and on an assign only when it learns the partition's
  // leader epoch afterwards (a new handle); seeking to the assigned position makes it run every time. A log that
  // no longer reaches that position comes back as _AUTO_OFFSET_RESET without an offset (Pump(): a truncation gap).
  rd_kafka_topic_partition_list_t* validate = rd_kafka_topic_partition_list_new(static_cast<int>(added.size()) + 1);
  for (size_t k = 0; k < added.size(); k++) {
    const AssignRequest& r = requests[added_index[k]];
    if (r.leader_epoch < 0 || r.offset < 0 || added[k]->consumed_next != r.offset) continue;
    rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(validate, r.topic.c_str(), r.partition);
    tp->offset = r.offset;
    rd_kafka_topic_partition_set_leader_epoch(tp, r.leader_epoch);
  }
  if (validate->cnt > 0) {
    // asynchronous (timeout 0); a seek refused here leaves the fetch as assigned, without the check
    rd_kafka_error_t* serr = rd_kafka_seek_partitions(consumer_, validate, 0);
    if (serr != nullptr) rd_kafka_error_destroy(serr);
  }
  rd_kafka_topic_partition_list_destroy(validate);
  if (over_budget_) SetPaused(added, true);  // they resume with the others once the budget drains
  return failures;
}

// unassign([{ topic, partition }]): stops consuming; records in flight still complete and advance `committable`.
Napi::Value Forwarder::Unassign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "unassign: array required");
  Napi::Array arr = info[0].As<Napi::Array>();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(arr.Length()));
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Object a = arr.Get(i).As<Napi::Object>();
    std::string topic = GetString(a, "topic", "");
    int32_t partition = static_cast<int32_t>(GetInt(a, "partition", -1));
    PartitionState* p = Lookup(topic.c_str(), partition);
    if (p == nullptr || !p->assigned) continue;
    p->assigned = false;
    p->probe.reset();
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  }
  rd_kafka_error_t* err = list->cnt > 0 ? rd_kafka_incremental_unassign(consumer_, list) : nullptr;
  rd_kafka_topic_partition_list_destroy(list);
  // Records of these partitions already consumed but not yet produced are dropped: they are past `committable`,
  // so the next owner reads them again.
  for (auto it = pending_.begin(); it != pending_.end();) {
    PartitionState* p = LookupConsumed(*it);
    if (p == nullptr || !p->assigned) {
      rd_kafka_message_destroy(*it);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (err != nullptr) {
    std::string msg = rd_kafka_error_string(err);
    rd_kafka_error_destroy(err);
    throw Napi::Error::New(env, "unassign: " + msg);
  }
  return env.Undefined();
}

// retryTarget(topic, partition) -> "retried" | "busy" | "idle". A partition the target refused a record of reads again
// from that record (its `committable`), once every record it had in flight is answered ("busy" until then): the cause
// (an ACL, the topic's max.message.bytes) may be gone. It stays reported errored until a record is delivered, so a
// refusal that persists never shows as a recovery. Records past it that landed before are sent again (duplicates in
// the in-flight window, as after any restart); consumed ones not yet produced are dropped and read again.
Napi::Value Forwarder::RetryTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "retryTarget: (topic, partition) required");
  std::string topic = info[0].As<Napi::String>().Utf8Value();
  PartitionState* p = Lookup(topic.c_str(), info[1].As<Napi::Number>().Int32Value());
  if (p == nullptr || !p->assigned || !p->errored || p->error_kind != "target" || p->committable < 0) return Napi::String::New(env, "idle");
  if (!p->inflight.empty()) return Napi::String::New(env, "busy");
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (LookupConsumed(*it) == p) {
      rd_kafka_message_destroy(*it);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  std::string why;
  int64_t from = p->committable;
  if (!Restart(p, from, &why)) return Napi::String::New(env, "idle");
  // what landed after the refused record is sent again: duplicates on the target, counted
  if (p->delivered_next > from + 1) p->resent += p->delivered_next - from - 1;
  p->errored = false;
  p->retrying = true;
  p->undelivered = false;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
  if (!p->budget_paused) rd_kafka_resume_partitions(consumer_, list);
  rd_kafka_topic_partition_list_destroy(list);
  return Napi::String::New(env, "retried");
}

void Forwarder::FailPartition(PartitionState* p, const std::string& code, const std::string& message, const char* kind) {
  if (p->errored) return;
  p->errored = true;
  p->retrying = false;
  p->probe.reset();
  p->error_code = code;
  p->error = message;
  p->error_kind = kind;
  if (p->assigned) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, p->topic.c_str(), p->partition);
    rd_kafka_pause_partitions(consumer_, list);
    rd_kafka_topic_partition_list_destroy(list);
  }
}

void Forwarder::Release(PartitionState* p, rd_kafka_message_t* msg) {
  int64_t size = static_cast<int64_t>(msg->len + msg->key_len);
  p->inflight_bytes -= size;
  inflight_bytes_ -= size;
  rd_kafka_message_destroy(msg);
}

void Forwarder::NoteSourceError(PartitionState* p, rd_kafka_resp_err_t err, const std::string& text) {
  std::string code = ErrName(err);
  if (code == p->source_error_code) p->source_error_repeats++;
  else p->source_error_repeats = 1;
  p->source_error_code = code;
  p->source_error = "source " + p->topic + "[" + std::to_string(p->partition) + "]: " + text;
  if (NotFixedByRetry(err) || p->source_error_repeats >= kSourceErrorRepeats) p->source_errored = true;
}

void Forwarder::ClearSourceError(PartitionState* p) {
  if (p->source_error_repeats == 0 && !p->source_errored) return;
  p->source_errored = false;
  p->source_error_repeats = 0;
  p->source_error.clear();
  p->source_error_code.clear();
}

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

// Returns false (and keeps ownership of msg) when the producer queue is full.
bool Forwarder::Forward(rd_kafka_message_t* msg) {
  PartitionState* p = LookupConsumed(msg);
  if (p == nullptr || !p->assigned || p->errored) {
    rd_kafka_message_destroy(msg);
    return true;
  }
  ClearSourceError(p);
  // A partition that started at a logical position (earliest, latest) has its concrete start offset from its first
  // record on: a restart (a new owner, or a new producer after a fatal error) goes on from there, never from `latest`.
  if (p->committable < 0 && p->inflight.empty()) {
    p->committable = msg->offset;
    // the epoch of the record at the start serves KIP-320's check as well: its epoch's log reaches past it
    p->committable_epoch = rd_kafka_message_leader_epoch(msg);
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
  p->consumed_next = msg->offset + 1;
  p->consumed_epoch = rd_kafka_message_leader_epoch(msg);
  return true;
}

void Forwarder::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  static_cast<Forwarder*>(opaque)->Delivered(msg);
}

void Forwarder::Delivered(const rd_kafka_message_t* dr) {
  auto* consumed = static_cast<rd_kafka_message_t*>(dr->_private);
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
  // order, so normally the record is at the front.
  for (auto& entry : p->inflight) {
    if (entry.msg == consumed) {
      entry.msg = lost ? NotDelivered() : nullptr;
      break;
    }
  }
  if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (consumed->offset + 1 > p->delivered_next) p->delivered_next = consumed->offset + 1;
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
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          if (p != nullptr) ClearSourceError(p);
        } else if (p != nullptr && msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
          p->gap_pending = true;
          // without an offset: KIP-320's check found that the leader's log diverged below the position (librdkafka's
          // _LOG_TRUNCATION, rdkafka_offset.c, reset to INVALID under auto.offset.reset=error)
          p->gap_diverged = msg->offset < 0;
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
      o.Set("committable", Napi::Number::New(env, static_cast<double>(p->committable)));
      if (p->delivered_next >= 0) o.Set("deliveredNext", Napi::Number::New(env, static_cast<double>(p->delivered_next)));
      if (p->resent > 0) o.Set("resent", Napi::Number::New(env, static_cast<double>(p->resent)));
      p->resent = 0;
      if (p->committable >= 0 && p->committable_epoch >= 0) o.Set("committableLeaderEpoch", p->committable_epoch);
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
  }
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
    if (timeout_ms > 0) rd_kafka_flush(producer_, timeout_ms);
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
