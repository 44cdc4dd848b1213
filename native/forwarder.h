// The forwarder: one librdkafka consumer (manual assign, no group membership, no auto commit) and one idempotent
// producer. Records move from consumer to producer inside C++: the produced value points at the consumed message's
// memory (no copy flag) and the consumed message is released in the delivery report.
//
// Threading: every method, and every librdkafka callback that carries data (delivery reports are served by
// rd_kafka_poll on the producer), runs on the JavaScript thread that owns the object (a piscina pool thread). Only
// the log callback comes from librdkafka's own threads, and it only touches `log_mutex_`.
#pragma once

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace strait {

// A stretch of source offsets [src_start, src_end] whose records landed at target = source + delta.
struct OffsetRun {
  int64_t src_start;
  int64_t src_end;
  int64_t delta;
};

// An offset-out-of-range reset strait resolved, reported once by progress().
struct GapEvent {
  std::string reason;  // "retention" (below the log start) | "truncation" (the log was truncated below `from`)
  int64_t from;        // the offset strait wanted to read
  int64_t to;          // where it went on (or would have, when stopped); for a truncation, where the logs diverged
  int64_t skipped;     // offsets that existed in the source's log once and were never read
  bool stopped;        // onGap=stop: the partition is errored instead
};

// A source record handed to the producer, or a placeholder that moves `committable` past offsets with no record to
// deliver (dropped by the loop guard, skipped by a gap).
struct InFlight {
  int64_t offset;
  // the consumed message; nullptr once delivered (or for a placeholder); NotDelivered() when the producer gave up on it
  rd_kafka_message_t* msg;
  int32_t leader_epoch;  // the record's leader epoch; -1 for a placeholder without one
};

// A consumer of its own that finds where a partition's log diverged from strait's position (see StartProbe()).
struct ProbeDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE); }
};
using Probe = std::unique_ptr<rd_kafka_t, ProbeDeleter>;

struct PartitionState {
  std::string topic;
  int32_t partition = 0;
  struct TopicState* topic_state = nullptr;
  bool assigned = true;    // false once unassigned; in-flight records still complete
  bool errored = false;  // stopped (until assigned again, or retryTarget()): a record the target refused, or a gap under onGap=stop
  // retryTarget() restarted it at the refused record: `error` is still reported until a record is delivered
  bool retrying = false;
  bool budget_paused = false;
  std::string error;
  std::string error_code;
  std::string error_kind;  // "target" | "gap" | "producer" (the producer failed fatally: see Pump())
  // A record before `committable`'s next step was not delivered (purged after a fatal producer error or by close(),
  // or its delivery failed): `committable` stays at it, so a retry, the next forwarder or owner reads it again.
  bool undelivered = false;
  // A consumer error librdkafka attributed to this partition. The partition keeps fetching (librdkafka backs off and
  // retries), so this clears by itself with the next record or end-of-partition event for it.
  bool source_errored = false;
  int source_error_repeats = 0;
  std::string source_error;
  std::string source_error_code;
  // OFFSET_OUT_OF_RANGE (auto.offset.reset=error): the fetch stopped at `gap_offset`; Pump() asks the watermarks
  // where to go on.
  bool gap_pending = false;
  int64_t gap_offset = -1;
  bool gap_diverged = false;  // the leader epoch check (KIP-320) found the log truncated below gap_offset
  int32_t gap_epoch = -1;      // the leader epoch of the record before gap_offset, when known
  // librdkafka could not look up the logical start (-2 earliest, -1 latest) the partition was assigned at: it starts
  // again at that position, resolved with the watermarks (0: not this case)
  int64_t gap_logical = 0;
  int gap_retries = 0;
  int64_t gap_next_try_ms = 0;
  // the log was truncated below gap_offset: the consumer that asks the leader where its log diverged from ours
  Probe probe;
  int64_t probe_deadline_ms = 0;
  // source offsets consumed and handed to the producer, oldest first (delivery reports arrive in this order:
  // the idempotent producer keeps per-partition order, except after a fatal error)
  std::deque<InFlight> inflight;
  int64_t committable = -1;   // next source offset to read after a restart; -1 = nothing delivered yet
  // `committable` went back since the last progress(): to where a truncated source log diverged (ResolveGaps())
  bool rewound = false;
  // the leader epoch of the record before `committable` (KIP-320: committed with the offset, so the next assign lets
  // the broker tell whether the log still holds it); -1 when not known (a logical start, a gap's restart)
  int32_t committable_epoch = -1;
  int64_t consumed_next = -1; // next offset the consumer will hand us
  int32_t consumed_epoch = -1;  // the leader epoch of the record before consumed_next; -1 when not known
  // librdkafka's rd_kafka_consume_batch_queue (2.12, rdkafka_queue.c) moves its application position to offset + 1 of
  // every event it hands out, an end-of-partition or fetch error event included, and a pause restarts the fetch at
  // that position: one past the log end after an end-of-partition event, OFFSET_OUT_OF_RANGE on a healthy log. The
  // offset of the oldest such event no record has passed since (where the fetch really stands); -1: none.
  // (librdkafka issue 4844; its fix, PR 5213, spares end-of-partition events only and is not in the bundled 2.12.0.)
  int64_t event_offset = -1;
  int64_t delivered_next = -1;  // one past the highest source offset the target acknowledged
  int64_t resent = 0;           // records acknowledged past a restart point, read and sent again (since progress())
  // offsets the target acknowledged past a record it refused (`committable` stays at that record): retryTarget()
  // reads them again, and each that lands again is counted in `resent`
  std::set<int64_t> acked_ahead;
  int64_t records = 0;        // delivered since the last progress() call
  int64_t bytes = 0;
  int64_t dropped = 0;        // records filtered out (provenance loop guard) since last progress()
  int64_t inflight_bytes = 0;
  int64_t last_ts = -1;       // source timestamp of the last delivered record
  bool has_run = false;
  bool run_dirty = false;
  OffsetRun run{0, 0, 0};
  std::vector<OffsetRun> closed_runs;  // finished since last progress()
  std::vector<GapEvent> gaps;          // since last progress()
  // Transactional mode (forwarder_txn.cc): the runs of the open transaction (the offset-map records committed with
  // it), and where the last committed transaction ended — the `committable` progress() reports, so the store never
  // runs ahead of what the target committed.
  std::vector<OffsetRun> txn_runs;
  int64_t txn_committed = -1;
  int32_t txn_committed_epoch = -1;
};

struct TopicState {
  std::string source;
  std::string target;
  std::string codec;  // the target topic's compression.codec
  rd_kafka_topic_t* target_rkt = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<PartitionState>> partitions;
};

struct Provenance {
  // identity policy: records whose origin is `drop_origin` are dropped; forwarded records get a header
  // naming their origin (the existing one, or `local_origin` for records produced on the source) and hop count.
  bool enabled = false;
  std::string header;        // header key
  std::string local_origin;  // the source cluster's id
  std::string drop_origin;   // the target cluster's id
  int max_hops = 0;
};

class Forwarder : public Napi::ObjectWrap<Forwarder> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Forwarder(const Napi::CallbackInfo& info);
  ~Forwarder() override;

 private:
  Napi::Value Assign(const Napi::CallbackInfo& info);
  Napi::Value Unassign(const Napi::CallbackInfo& info);
  Napi::Value Pump(const Napi::CallbackInfo& info);
  Napi::Value Progress(const Napi::CallbackInfo& info);
  Napi::Value Commit(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value TestFatalError(const Napi::CallbackInfo& info);
  Napi::Value RetryTarget(const Napi::CallbackInfo& info);
  Napi::Value SetBudget(const Napi::CallbackInfo& info);
  Napi::Value Transaction(const Napi::CallbackInfo& info);
  Napi::Value FlushTransaction(const Napi::CallbackInfo& info);
  Napi::Value CommitTransaction(const Napi::CallbackInfo& info);
  bool BeginTransaction();
  bool ContinueTransactionInit();
  void NoteTransactionRun(PartitionState* p, int64_t src, int64_t delta);
  void FailTransaction(rd_kafka_error_t* err, const std::string& during, int abort_timeout_ms);

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnLog(const rd_kafka_t* rk, int level, const char* fac, const char* buf);
  static void OnClientError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void Delivered(const rd_kafka_message_t* msg);
  bool Forward(rd_kafka_message_t* msg);  // false: producer queue full, keep msg for later
  void FailPartition(PartitionState* p, const std::string& code, const std::string& message, const char* kind = "target");
  void NoteSourceError(PartitionState* p, rd_kafka_resp_err_t err, const std::string& text);
  void ClearSourceError(PartitionState* p);
  void ResolveGaps();
  bool StartProbe(PartitionState* p, std::string* why);
  int64_t ProbeAnswer(PartitionState* p, std::string* last_error);
  bool Restart(PartitionState* p, int64_t offset, std::string* why);
  void Release(PartitionState* p, rd_kafka_message_t* msg);
  void ApplyBudget();
  void SetPaused(const std::vector<PartitionState*>& parts, bool pause);
  void RestoreFetchPositions(const std::vector<PartitionState*>& parts);
  void Shutdown(int timeout_ms);
  void CheckOpen(Napi::Env env) const;
  PartitionState* Lookup(const char* topic, int32_t partition);
  PartitionState* LookupConsumed(const rd_kafka_message_t* msg);

  rd_kafka_t* consumer_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  rd_kafka_queue_t* consumer_queue_ = nullptr;
  // the consumer's settings, for the probes (StartProbe())
  std::unique_ptr<rd_kafka_conf_t, void (*)(rd_kafka_conf_t*)> probe_conf_{nullptr, rd_kafka_conf_destroy};
  std::map<std::string, std::unique_ptr<TopicState>> topics_;
  std::unordered_map<const rd_kafka_topic_t*, TopicState*> source_rkt_cache_;
  std::deque<rd_kafka_message_t*> pending_;  // consumed, not yet accepted by the producer (queue full)
  std::vector<rd_kafka_message_t*> batch_;
  Provenance provenance_;
  std::string default_codec_;
  int64_t budget_bytes_ = 0;
  int64_t inflight_bytes_ = 0;
  bool over_budget_ = false;
  bool closed_ = false;
  int batch_size_ = 0;
  bool stop_on_gap_ = false;  // onGap: "stop" rather than "continue"
  // replication latency (source timestamp -> target ack) in fixed buckets, reset by progress()
  static constexpr int kBuckets = 16;
  double latency_bounds_[kBuckets] = {0};  // upper bounds (ms), from the options; the last counter is +Inf
  int64_t latency_counts_[kBuckets + 1] = {0};
  double latency_sum_ms_ = 0;
  // an error without a partition: librdkafka's name (what TypeScript branches on) and its reason
  struct ClientError {
    std::string code;
    std::string message;
    bool empty() const { return code.empty(); }
    void clear() { code.clear(); message.clear(); }
  };
  static Napi::Object ClientErrorToJs(Napi::Env env, const ClientError& e);
  ClientError consumer_error_;
  // Transactional mode (delivery: exactly-once): the producer has a transactional.id; records go out in transactions
  // that begin with the first record after a commit and end with commitTransaction() (forwarder_txn.cc).
  bool transactional_ = false;
  // init_transactions runs in librdkafka's background and is resumed from pump() (ContinueTransactionInit()): until
  // it completed, nothing is read or produced, and the pool thread goes on pumping its other forwarders
  bool txn_ready_ = false;
  int64_t txn_init_deadline_ms_ = 0;
  int64_t txn_init_next_ms_ = 0;
  bool txn_open_ = false;
  int64_t txn_started_ms_ = 0;
  int64_t txn_bytes_ = 0;
  // a transaction call failed: nothing more is produced until this forwarder is closed (worker/pump.ts starts its
  // partitions again in a new one, from the last committed transaction)
  bool txn_failed_ = false;
  ClientError txn_error_;
  // the failed call was commit_transaction and its transaction could not be aborted: its EndTxn may have reached the
  // coordinator, which then commits it whatever this producer saw. Where the partition resumes is known only from the
  // target's offset map, read after its transactional id was fenced (worker/pump.ts asks the main thread for it)
  bool txn_outcome_unknown_ = false;
  std::mutex log_mutex_;
  std::string last_log_;
  // the newest client-level error (error_cb) of each client since the last progress(), under log_mutex_
  ClientError client_consumer_error_;
  ClientError client_producer_error_;
};

}  // namespace strait
