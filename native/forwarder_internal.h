#pragma once
// What the forwarder's translation units share (forwarder.cc, forwarder_setup.cc, forwarder_assign.cc,
// forwarder_gaps.cc, forwarder_progress.cc): clock, error classes and limits. Internal to the addon.

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <string>

namespace strait {
namespace fwd {

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string ErrName(rd_kafka_resp_err_t err) { return rd_kafka_err2name(err); }

// Consumer errors that retrying the same fetch does not fix: the partition is errored at the first one. Others
// (transport, leader changes) error it only when they repeat without a record in between.
inline bool NotFixedByRetry(rd_kafka_resp_err_t err) {
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
inline rd_kafka_message_t* NotDelivered() {
  static rd_kafka_message_t marker;
  return &marker;
}

// Delivery failures that are the producer's, not the target's verdict on the record: the fatal error of the
// idempotent producer and the purges that follow it (or close()).
inline bool ProducerFailed(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT;
}

constexpr int kSourceErrorRepeats = 3;
constexpr int kGapRetries = 3;
constexpr int kWatermarkTimeoutMs = 5000;
// how long a probe may take to find where a truncated log diverged before it is tried again (StartProbe())
constexpr int64_t kProbeTimeoutMs = 30000;
// probes running at once in one forwarder
constexpr int kMaxProbes = 4;
// transactional mode: how long init_transactions (a new forwarder fencing the previous owner) and an abort may take
constexpr int kTxnInitTimeoutMs = 15000;
// how often pump() resumes an init_transactions still under way. Each resume while the transaction coordinator is
// unknown lets librdkafka send one more FindCoordinator (one at a time: rd_kafka_txn_coord_query), so not every loop.
constexpr int64_t kTxnInitRetryMs = 100;
constexpr int kTxnAbortTimeoutMs = 2000;
// A commit that timed out goes on inside librdkafka; it is resumed (commit_transaction called again) this many times
// before the forwarder gives up on it (see CommitTransaction).
constexpr int kTxnCommitResumes = 2;

// optional fields of a JavaScript argument object
inline std::string GetString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

inline int64_t GetInt(const Napi::Object& o, const char* key, int64_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : fallback;
}

}  // namespace fwd
}  // namespace strait
