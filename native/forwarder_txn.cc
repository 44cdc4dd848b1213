// Transactional mode (route option delivery: exactly-once). The producer has a transactional.id (one per source
// partition: worker/pump.ts gives each such partition a forwarder of its own); a transaction begins with the first
// record produced after the previous commit. At its boundary the caller stops pumping and calls flushTransaction(),
// which waits for every record's acknowledgement and returns the runs they landed in; the caller encodes those as
// offset-map records and hands them to commitTransaction(), which produces them in the same transaction and commits
// it. Records and the offset map that covers them are then visible to read_committed consumers together (KIP-98).
//
// A failed call leaves the forwarder failed: progress() reports it as `fatal`, pump() returns -1, and the caller
// closes it and starts its partition again from the last committed transaction (progress()'s `committable`) — or,
// when a commit failed without being aborted (`txnOutcomeUnknown`: its EndTxn may have reached the coordinator, which
// completes it when the next producer of the id initialises), from the target's offset map read after a fence.
#include "forwarder.h"
#include "forwarder_internal.h"

#include <string>

namespace strait {

using namespace fwd;

// init_transactions, resumed: librdkafka goes on with a call that timed out in its background, and the next call
// returns its result (rdkafka.h: "This call is resumable when a retriable timeout error is returned"). Each call is
// made without waiting, at most every kTxnInitRetryMs (a call while the coordinator is still unknown looks it up
// again). True once it completed; a non-retriable error, or none completed by the deadline, fails the forwarder.
bool Forwarder::ContinueTransactionInit() {
  if (txn_ready_) return true;
  if (txn_failed_) return false;
  int64_t now = NowMs();
  if (now < txn_init_next_ms_) return false;
  txn_init_next_ms_ = now + kTxnInitRetryMs;
  rd_kafka_error_t* err = rd_kafka_init_transactions(producer_, 0);
  if (err == nullptr) {
    txn_ready_ = true;
    return true;
  }
  if (rd_kafka_error_is_retriable(err) && !rd_kafka_error_is_fatal(err) && now < txn_init_deadline_ms_) {
    rd_kafka_error_destroy(err);
    return false;
  }
  bool timed_out = rd_kafka_error_code(err) == RD_KAFKA_RESP_ERR__TIMED_OUT;
  FailTransaction(err, timed_out ? "init_transactions, not completed within " + std::to_string(kTxnInitTimeoutMs) + " ms" : "init_transactions", 0);
  return false;
}

bool Forwarder::BeginTransaction() {
  rd_kafka_error_t* err = rd_kafka_begin_transaction(producer_);
  if (err != nullptr) {
    FailTransaction(err, "begin_transaction", 0);
    return false;
  }
  txn_open_ = true;
  txn_started_ms_ = NowMs();
  txn_bytes_ = 0;
  return true;
}

// The runs of the open transaction: like the partition's own runs, but only what this transaction produced (the
// transaction's commit marker takes a target offset, so the next transaction's first record starts a new run anyway).
void Forwarder::NoteTransactionRun(PartitionState* p, int64_t src, int64_t delta) {
  if (!p->txn_runs.empty()) {
    OffsetRun& last = p->txn_runs.back();
    if (last.delta == delta && src == last.src_end + 1) {
      last.src_end = src;
      return;
    }
  }
  p->txn_runs.push_back(OffsetRun{src, src, delta});
}

// Takes `err` (may be null: `during` is then the reason). An abortable transaction is aborted so read_committed
// consumers need not wait for transaction.timeout.ms; a fatal error (fenced: a newer owner's init_transactions) is not.
void Forwarder::FailTransaction(rd_kafka_error_t* err, const std::string& during, int abort_timeout_ms) {
  txn_failed_ = true;
  if (err != nullptr) {
    txn_error_ = ClientError{rd_kafka_error_name(err), during + ": " + rd_kafka_error_string(err)};
  } else {
    txn_error_ = ClientError{"_TRANSACTION", during};
  }
  bool abortable = err == nullptr || rd_kafka_error_txn_requires_abort(err) || !rd_kafka_error_is_fatal(err);
  if (err != nullptr) rd_kafka_error_destroy(err);
  if (txn_open_ && abortable && abort_timeout_ms > 0) {
    rd_kafka_error_t* aborted = rd_kafka_abort_transaction(producer_, abort_timeout_ms);
    if (aborted == nullptr) txn_open_ = false;
    else rd_kafka_error_destroy(aborted);
  }
}

// transaction() -> { ready, open, ageMs, bytes }: whether init_transactions completed (always, for a forwarder that is
// not transactional), and the open transaction's age and the key+value bytes produced in it.
Napi::Value Forwarder::Transaction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ready", !transactional_ || txn_ready_);
  o.Set("open", txn_open_);
  o.Set("ageMs", Napi::Number::New(env, txn_open_ ? static_cast<double>(NowMs() - txn_started_ms_) : 0));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(txn_open_ ? txn_bytes_ : 0)));
  return o;
}

// flushTransaction(timeoutMs) -> { ok, errorCode?, error?, partitions: [{ topic, partition, targetTopic, runs }] }:
// waits until the target acknowledged every record of the open transaction, then returns its runs per partition.
Napi::Value Forwarder::FlushTransaction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int timeout = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 10000;
  Napi::Object out = Napi::Object::New(env);
  Napi::Array parts = Napi::Array::New(env);
  out.Set("partitions", parts);
  if (!transactional_ || txn_failed_) {
    out.Set("ok", false);
    out.Set("errorCode", txn_failed_ ? txn_error_.code : "_STATE");
    out.Set("error", txn_failed_ ? txn_error_.message : "not a transactional forwarder");
    return out;
  }
  if (!txn_open_) {
    out.Set("ok", true);
    return out;
  }
  // rd_kafka_flush serves the delivery reports, so every run is known once it returns
  if (rd_kafka_flush(producer_, timeout) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    FailTransaction(nullptr, "the records of the transaction were not all acknowledged within " + std::to_string(timeout) + " ms", kTxnAbortTimeoutMs);
  }
  char fatal[256];
  rd_kafka_resp_err_t fatal_err = rd_kafka_fatal_error(producer_, fatal, sizeof(fatal));
  if (fatal_err != RD_KAFKA_RESP_ERR_NO_ERROR && !txn_failed_) {
    txn_failed_ = true;
    txn_error_ = ClientError{ErrName(fatal_err), fatal};
  }
  if (txn_failed_) {
    out.Set("ok", false);
    out.Set("errorCode", txn_error_.code);
    out.Set("error", txn_error_.message);
    return out;
  }
  uint32_t idx = 0;
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) {
      PartitionState* p = e.second.get();
      if (p->txn_runs.empty()) continue;
      Napi::Object o = Napi::Object::New(env);
      o.Set("topic", p->topic);
      o.Set("partition", p->partition);
      o.Set("targetTopic", t.second->target);
      Napi::Array runs = Napi::Array::New(env, p->txn_runs.size());
      uint32_t r = 0;
      for (const OffsetRun& run : p->txn_runs) {
        Napi::Array a = Napi::Array::New(env, 3);
        a.Set(0u, Napi::Number::New(env, static_cast<double>(run.src_start)));
        a.Set(1u, Napi::Number::New(env, static_cast<double>(run.src_end)));
        a.Set(2u, Napi::Number::New(env, static_cast<double>(run.delta)));
        runs.Set(r++, a);
      }
      o.Set("runs", runs);
      parts.Set(idx++, o);
    }
  }
  out.Set("ok", true);
  return out;
}

// commitTransaction(topic, [{ key: Buffer, value: Buffer }], timeoutMs) -> { ok, errorCode?, error? }: produces the
// records (the offset map's runs of this transaction) to `topic` in the open transaction and commits it. Call it
// right after flushTransaction(), with no pump() in between.
Napi::Value Forwarder::CommitTransaction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    throw Napi::TypeError::New(env, "commitTransaction: (topic, records[, timeoutMs]) required");
  }
  std::string topic = info[0].As<Napi::String>().Utf8Value();
  Napi::Array records = info[1].As<Napi::Array>();
  int timeout = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 10000;
  Napi::Object out = Napi::Object::New(env);
  auto failed = [&]() {
    out.Set("ok", false);
    out.Set("errorCode", txn_error_.code);
    out.Set("error", txn_error_.message);
    return out;
  };
  if (!transactional_ || txn_failed_) return failed();
  if (!txn_open_) {
    out.Set("ok", true);
    return out;
  }
  for (uint32_t i = 0; i < records.Length(); i++) {
    Napi::Object rec = records.Get(i).As<Napi::Object>();
    Napi::Buffer<char> key = rec.Get("key").As<Napi::Buffer<char>>();
    Napi::Buffer<char> value = rec.Get("value").As<Napi::Buffer<char>>();
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key.Data(), key.Length()), RD_KAFKA_V_VALUE(value.Data(), value.Length()), RD_KAFKA_V_OPAQUE(nullptr),
        RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      FailTransaction(nullptr, std::string("cannot produce the offset map's runs to ") + topic + ": " + ErrName(err) + " " + rd_kafka_err2str(err),
                      kTxnAbortTimeoutMs);
      return failed();
    }
  }
  rd_kafka_error_t* err = rd_kafka_commit_transaction(producer_, timeout);
  // A commit that timed out (its EndTxn may be on its way: a coordinator moving, a broker restarting) cannot be
  // aborted, and a new producer of the same transactional.id would complete it at the coordinator while the partition
  // started again before it: every record of it committed twice. librdkafka resumes it when called again.
  for (int resumed = 0; err != nullptr && resumed < kTxnCommitResumes && rd_kafka_error_is_retriable(err) && !rd_kafka_error_is_fatal(err) &&
                        !rd_kafka_error_txn_requires_abort(err);
       resumed++) {
    rd_kafka_error_destroy(err);
    err = rd_kafka_commit_transaction(producer_, timeout);
  }
  if (err != nullptr) {
    FailTransaction(err, "commit_transaction", kTxnAbortTimeoutMs);
    // aborted: it did not commit. Not aborted (a commit still under way, a fatal error): it may have, or may yet.
    txn_outcome_unknown_ = txn_open_;
    return failed();
  }
  txn_open_ = false;
  txn_bytes_ = 0;
  for (auto& t : topics_) {
    for (auto& e : t.second->partitions) {
      PartitionState* p = e.second.get();
      p->txn_runs.clear();
      // every record of the transaction was acknowledged (flushTransaction()): `committable` is past all of them
      if (p->committable >= 0) {
        p->txn_committed = p->committable;
        p->txn_committed_epoch = p->committable_epoch;
      }
    }
  }
  out.Set("ok", true);
  return out;
}

}  // namespace strait
