// The forwarder's construction from complete options (TypeScript fills every default), and its JavaScript methods.
#include "forwarder.h"
#include "forwarder_internal.h"
#include "conf.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace strait {

using namespace fwd;

namespace {

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
                         InstanceMethod<&Forwarder::SetBudget>("setBudget"),
                         InstanceMethod<&Forwarder::Transaction>("transaction"),
                         InstanceMethod<&Forwarder::FlushTransaction>("flushTransaction"),
                         InstanceMethod<&Forwarder::CommitTransaction>("commitTransaction"),
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
  std::string transactional_id = RequireString(env, opts, "transactionalId");
  transactional_ = !transactional_id.empty();
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
  // set after the caller's properties, which may not name it (shared/client-properties.ts refuses it)
  if (transactional_ && rd_kafka_conf_set(pconf, "transactional.id", transactional_id.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(pconf);
    Shutdown(0);
    throw Napi::Error::New(env, std::string("producer: transactional.id: ") + errstr);
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
  if (transactional_) {
    // KIP-98: registers the transactional id with its coordinator and bumps its epoch, which fences any earlier
    // producer of the same id (the partition's previous owner) and aborts the transaction it left open. Started here
    // without waiting; pump() resumes it until it completes (forwarder_txn.cc, ContinueTransactionInit()).
    txn_init_deadline_ms_ = NowMs() + kTxnInitTimeoutMs;
    ContinueTransactionInit();
  }
  batch_.resize(static_cast<size_t>(batch_size_));
}

Forwarder::~Forwarder() { Shutdown(0); }

}  // namespace strait
