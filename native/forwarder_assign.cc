// Partitions coming and going: assign (checked whole before anything changes), unassign, the retry of a target
// refusal, and the errored states of a partition.
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
      p->acked_ahead.clear();  // a new start: the worker counts what it sends again (worker/start-planner.ts)
      p->gap_pending = false;
      p->gap_diverged = false;
      p->gap_logical = 0;
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
        p->txn_committed = start;
        p->txn_committed_epoch = r.leader_epoch;
        p->consumed_next = start;
        p->consumed_epoch = r.leader_epoch;
      }
    }
    p->assigned = true;
    p->event_offset = -1;  // the assign starts librdkafka's position afresh
    rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(list, r.topic.c_str(), r.partition);
    tp->offset = start;
    // the epoch belongs to the offset it came with (the committed one), not to a position this forwarder moved on to
    if (start >= 0 && start == r.offset && r.leader_epoch >= 0) rd_kafka_topic_partition_set_leader_epoch(tp, r.leader_epoch);
    added.push_back(p);
    was_new.push_back(actions[i] == Action::kNew);
    added_index.push_back(i);
  }
  rd_kafka_error_t* err = list->cnt > 0 ? rd_kafka_incremental_assign(consumer_, list) : nullptr;
  // librdkafka keeps an application pause across unassign and assign: a partition paused here before (errored, or
  // over the budget) would fetch nothing. The budget pauses them again below when it must.
  if (err == nullptr && list->cnt > 0) rd_kafka_resume_partitions(consumer_, list);
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
  // what landed after the refused record is sent again: duplicates on the target, counted as they land (Delivered())
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

// setBudget(bytes): the in-flight budget from now on. An exactly-once partition's forwarder shares its route's budget
// on the thread with the partitions beside it, so its share changes as partitions come and go.
Napi::Value Forwarder::SetBudget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "setBudget: bytes (a number) required");
  int64_t bytes = info[0].As<Napi::Number>().Int64Value();
  if (bytes < 1) throw Napi::RangeError::New(env, "setBudget: bytes must be at least 1");
  budget_bytes_ = bytes;
  ApplyBudget();
  return env.Undefined();
}

}  // namespace strait
