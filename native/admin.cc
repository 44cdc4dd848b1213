// Admin operations node-rdkafka does not expose (topic config describe/alter), run on libuv's thread pool so the
// JavaScript thread never blocks on a broker round trip.
#include "admin.h"

#include "conf.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace strait {

namespace {

// How much longer than its caller librdkafka keeps a consumer group request alive (see HandleSlot): the handle of an
// abandoned request is destroyed within milliseconds of the caller's timeout, long before this runs out.
constexpr int kAbandonMarginMs = 60000;
constexpr int kMaxRequestTimeoutMs = 3600000;

struct ConfigEntry {
  std::string name;
  std::string value;
  bool has_value = false;
  bool is_default = false;
  bool is_read_only = false;
  bool is_sensitive = false;
  std::string source;
};

struct ResourceResult {
  std::string name;
  std::string error;
  std::vector<ConfigEntry> entries;
};

// Waits for the admin result event on a private queue.
rd_kafka_event_t* WaitFor(rd_kafka_queue_t* q, int timeout_ms) { return rd_kafka_queue_poll(q, timeout_ms + 2000); }

class DescribeWorker : public Napi::AsyncWorker {
 public:
  DescribeWorker(Napi::Env env, std::shared_ptr<rd_kafka_t> rk, std::vector<std::string> topics, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), topics_(std::move(topics)),
        timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<rd_kafka_ConfigResource_t*> res;
    for (auto& t : topics_) res.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_.get());
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_DescribeConfigs(rk_.get(), res.data(), res.size(), opts, q);
    rd_kafka_event_t* ev = WaitFor(q, timeout_ms_);
    if (ev == nullptr) {
      SetError("describe configs timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      SetError(std::string(rd_kafka_err2name(rd_kafka_event_error(ev))) + ": " + rd_kafka_event_error_string(ev));
    } else {
      const rd_kafka_DescribeConfigs_result_t* r = rd_kafka_event_DescribeConfigs_result(ev);
      size_t n = 0;
      const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(r, &n);
      for (size_t i = 0; i < n; i++) {
        ResourceResult out;
        out.name = rd_kafka_ConfigResource_name(rs[i]);
        if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          out.error = std::string(rd_kafka_err2name(rd_kafka_ConfigResource_error(rs[i])));
          const char* s = rd_kafka_ConfigResource_error_string(rs[i]);
          if (s != nullptr) out.error += std::string(": ") + s;
        }
        size_t m = 0;
        const rd_kafka_ConfigEntry_t** es = rd_kafka_ConfigResource_configs(rs[i], &m);
        for (size_t j = 0; j < m; j++) {
          ConfigEntry e;
          e.name = rd_kafka_ConfigEntry_name(es[j]);
          const char* v = rd_kafka_ConfigEntry_value(es[j]);
          e.has_value = v != nullptr;
          if (v != nullptr) e.value = v;
          e.is_default = rd_kafka_ConfigEntry_is_default(es[j]) != 0;
          e.is_read_only = rd_kafka_ConfigEntry_is_read_only(es[j]) != 0;
          e.is_sensitive = rd_kafka_ConfigEntry_is_sensitive(es[j]) != 0;
          e.source = rd_kafka_ConfigSource_name(rd_kafka_ConfigEntry_source(es[j]));
          out.entries.push_back(std::move(e));
        }
        results_.push_back(std::move(out));
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy_array(res.data(), res.size());
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    for (auto& r : results_) {
      Napi::Object topic = Napi::Object::New(env);
      if (!r.error.empty()) topic.Set("$error", r.error);
      for (auto& e : r.entries) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("value", e.has_value ? Napi::Value(Napi::String::New(env, e.value)) : env.Null());
        o.Set("isDefault", e.is_default);
        o.Set("isReadOnly", e.is_read_only);
        o.Set("isSensitive", e.is_sensitive);
        o.Set("source", e.source);
        topic.Set(e.name, o);
      }
      out.Set(r.name, topic);
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;
  std::vector<std::string> topics_;
  int timeout_ms_;
  std::vector<ResourceResult> results_;
};

class AlterWorker : public Napi::AsyncWorker {
 public:
  AlterWorker(Napi::Env env, std::shared_ptr<rd_kafka_t> rk, std::string topic, std::vector<std::pair<std::string, std::string>> set,
              std::vector<std::string> del, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), topic_(std::move(topic)),
        set_(std::move(set)), del_(std::move(del)), timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic_.c_str());
    for (auto& kv : set_) {
      rd_kafka_error_t* e =
          rd_kafka_ConfigResource_add_incremental_config(res, kv.first.c_str(), RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET, kv.second.c_str());
      if (e != nullptr) {
        SetError(kv.first + ": " + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        rd_kafka_ConfigResource_destroy(res);
        return;
      }
    }
    for (auto& k : del_) {
      rd_kafka_error_t* e =
          rd_kafka_ConfigResource_add_incremental_config(res, k.c_str(), RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, nullptr);
      if (e != nullptr) rd_kafka_error_destroy(e);
    }
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_.get());
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_IncrementalAlterConfigs(rk_.get(), &res, 1, opts, q);
    rd_kafka_event_t* ev = WaitFor(q, timeout_ms_);
    if (ev == nullptr) {
      SetError("alter configs timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      SetError(std::string(rd_kafka_err2name(rd_kafka_event_error(ev))) + ": " + rd_kafka_event_error_string(ev));
    } else {
      size_t n = 0;
      const rd_kafka_ConfigResource_t** rs =
          rd_kafka_IncrementalAlterConfigs_result_resources(rd_kafka_event_IncrementalAlterConfigs_result(ev), &n);
      for (size_t i = 0; i < n; i++) {
        if (rd_kafka_ConfigResource_error(rs[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* s = rd_kafka_ConfigResource_error_string(rs[i]);
          SetError(std::string(rd_kafka_err2name(rd_kafka_ConfigResource_error(rs[i]))) + (s ? std::string(": ") + s : ""));
        }
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;
  std::string topic_;
  std::vector<std::pair<std::string, std::string>> set_;
  std::vector<std::string> del_;
  int timeout_ms_;
};

// ---- consumer groups ----

std::string ErrorText(const rd_kafka_error_t* e) {
  return std::string(rd_kafka_error_name(e)) + ": " + rd_kafka_error_string(e);
}

std::string ErrText(rd_kafka_resp_err_t err) { return std::string(rd_kafka_err2name(err)) + ": " + rd_kafka_err2str(err); }

struct GroupListingOut {
  std::string group_id;
  std::string state;
  bool is_simple = false;
};

struct GroupDescriptionOut {
  std::string group_id;
  std::string state;
  size_t members = 0;
  std::string error;
};

struct TopicPartitionIn {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool has_metadata = false;
  std::string metadata;
};

struct GroupOffsetOut {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  bool has_metadata = false;
  std::string metadata;
  std::string error;
  std::string error_code;  // librdkafka's error name, when `error` is set
};

// One consumer group admin request on a private queue with the request timeout set; subclasses start the request and
// read the result event on the thread pool, and build JavaScript values in OnOK on the main thread.
class GroupWorker : public Napi::AsyncWorker {
 public:
  GroupWorker(Napi::Env env, std::shared_ptr<HandleSlot> slot, std::shared_ptr<rd_kafka_t> rk, const char* name,
              rd_kafka_admin_op_t op, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), slot_(std::move(slot)),
        name_(name), op_(op), timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_.get());
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), op_);
    char errstr[256];
    const int librdkafka_timeout = std::min(kMaxRequestTimeoutMs, timeout_ms_ + kAbandonMarginMs);
    if (rd_kafka_AdminOptions_set_request_timeout(opts, librdkafka_timeout, errstr, sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Fail("_INVALID_ARG", std::string("timeoutMs: ") + errstr);
    } else {
      Start(opts, q);
      rd_kafka_event_t* ev = rd_kafka_queue_poll(q, timeout_ms_);
      if (ev == nullptr) {
        // abandoned while librdkafka still holds it: this handle must go before the request could be sent late
        slot_->Retire(rk_);
        Fail("_TIMED_OUT", "_TIMED_OUT: no result within " + std::to_string(timeout_ms_) + " ms (no broker, or not the group's coordinator, answered)");
      } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        Fail(rd_kafka_err2name(rd_kafka_event_error(ev)), std::string(rd_kafka_err2name(rd_kafka_event_error(ev))) + ": " + rd_kafka_event_error_string(ev));
      } else {
        Collect(ev);
      }
      if (ev != nullptr) rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    Finish();
  }
  // the rejection carries librdkafka's error name as `kafkaCode`: callers branch on it, never on the message
  void OnError(const Napi::Error& e) override {
    Napi::Object err = e.Value();
    if (!code_.empty()) err.Set("kafkaCode", Napi::String::New(Env(), code_));
    deferred_.Reject(err);
  }

 protected:
  virtual void Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) = 0;
  virtual void Collect(rd_kafka_event_t* ev) = 0;
  // Frees what Start allocated, once the result is in (or abandoned).
  virtual void Finish() {}
  // `code`: librdkafka's error name of the failure; `why` the text of the message, which starts with it
  void Fail(const std::string& code, const std::string& why) {
    code_ = code;
    SetError(std::string(name_) + ": " + why);
  }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;

 private:
  std::shared_ptr<HandleSlot> slot_;
  const char* name_;
  rd_kafka_admin_op_t op_;
  int timeout_ms_;
  std::string code_;
};

Napi::Array OffsetsToJs(Napi::Env env, const std::vector<GroupOffsetOut>& offsets) {
  Napi::Array out = Napi::Array::New(env, offsets.size());
  for (size_t i = 0; i < offsets.size(); i++) {
    const GroupOffsetOut& o = offsets[i];
    Napi::Object e = Napi::Object::New(env);
    e.Set("topic", o.topic);
    e.Set("partition", o.partition);
    e.Set("offset", static_cast<double>(o.offset));
    if (o.has_metadata) e.Set("metadata", o.metadata);
    if (!o.error.empty()) {
      e.Set("error", o.error);
      e.Set("errorCode", o.error_code);
    }
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

// The single group result of a List/AlterConsumerGroupOffsets event, sorted by topic and partition: a group-level
// error fails the request, partition-level errors travel with their partition.
bool ReadGroupOffsets(const rd_kafka_group_result_t** groups, size_t n, const std::string& group, std::string* code,
                      std::string* failure, std::vector<GroupOffsetOut>* out) {
  if (n != 1) {
    *code = "_FAIL";
    *failure = "expected one group result, got " + std::to_string(n);
    return false;
  }
  const rd_kafka_error_t* ge = rd_kafka_group_result_error(groups[0]);
  if (ge != nullptr) {
    *code = rd_kafka_error_name(ge);
    *failure = "group '" + group + "': " + ErrorText(ge);
    return false;
  }
  const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(groups[0]);
  for (int i = 0; parts != nullptr && i < parts->cnt; i++) {
    const rd_kafka_topic_partition_t& p = parts->elems[i];
    GroupOffsetOut o;
    o.topic = p.topic;
    o.partition = p.partition;
    // RD_KAFKA_OFFSET_INVALID (-1001): the group has no committed offset for this partition
    o.offset = p.offset >= 0 ? p.offset : -1;
    if (p.metadata != nullptr && p.metadata_size > 0) {
      o.has_metadata = true;
      o.metadata.assign(static_cast<const char*>(p.metadata), p.metadata_size);
    }
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      o.error = ErrText(p.err);
      o.error_code = rd_kafka_err2name(p.err);
    }
    out->push_back(std::move(o));
  }
  std::sort(out->begin(), out->end(), [](const GroupOffsetOut& a, const GroupOffsetOut& b) {
    return a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition;
  });
  return true;
}

class ListGroupsWorker : public GroupWorker {
 public:
  ListGroupsWorker(Napi::Env env, std::shared_ptr<HandleSlot> slot, std::shared_ptr<rd_kafka_t> rk, int timeout_ms)
      : GroupWorker(env, std::move(slot), std::move(rk), "listConsumerGroups", RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, timeout_ms) {}

  void Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override { rd_kafka_ListConsumerGroups(rk_.get(), opts, q); }

  void Collect(rd_kafka_event_t* ev) override {
    const rd_kafka_ListConsumerGroups_result_t* r = rd_kafka_event_ListConsumerGroups_result(ev);
    // Each broker answers for the groups it coordinates; one that failed makes the listing incomplete, and an
    // incomplete listing would read as "group absent", so it fails the whole request.
    size_t ne = 0;
    const rd_kafka_error_t** errs = rd_kafka_ListConsumerGroups_result_errors(r, &ne);
    if (ne > 0) {
      std::string why;
      for (size_t i = 0; i < ne; i++) why += (i > 0 ? "; " : "") + ErrorText(errs[i]);
      Fail(rd_kafka_error_name(errs[0]), why);
      return;
    }
    size_t n = 0;
    const rd_kafka_ConsumerGroupListing_t** gs = rd_kafka_ListConsumerGroups_result_valid(r, &n);
    for (size_t i = 0; i < n; i++) {
      GroupListingOut g;
      g.group_id = rd_kafka_ConsumerGroupListing_group_id(gs[i]);
      g.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gs[i]));
      g.is_simple = rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gs[i]) != 0;
      groups_.push_back(std::move(g));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, groups_.size());
    for (size_t i = 0; i < groups_.size(); i++) {
      Napi::Object g = Napi::Object::New(env);
      g.Set("groupId", groups_[i].group_id);
      g.Set("state", groups_[i].state);
      g.Set("isSimple", groups_[i].is_simple);
      out.Set(static_cast<uint32_t>(i), g);
    }
    deferred_.Resolve(out);
  }

 private:
  std::vector<GroupListingOut> groups_;
};

class DescribeGroupsWorker : public GroupWorker {
 public:
  DescribeGroupsWorker(Napi::Env env, std::shared_ptr<HandleSlot> slot, std::shared_ptr<rd_kafka_t> rk, std::vector<std::string> groups, int timeout_ms)
      : GroupWorker(env, std::move(slot), std::move(rk), "describeConsumerGroups", RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout_ms),
        groups_(std::move(groups)) {}

  void Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    std::vector<const char*> names;
    for (auto& g : groups_) names.push_back(g.c_str());
    rd_kafka_DescribeConsumerGroups(rk_.get(), names.data(), names.size(), opts, q);
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t** ds =
        rd_kafka_DescribeConsumerGroups_result_groups(rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    // librdkafka reports an unreachable coordinator per group, with a local (negative) code such as _TIMED_OUT or
    // _TRANSPORT. When every group failed that way the request itself failed, and the caller is told so.
    bool all_local = n > 0;
    for (size_t i = 0; i < n && all_local; i++) {
      const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(ds[i]);
      all_local = e != nullptr && rd_kafka_error_code(e) < 0;
    }
    if (all_local) {
      Fail(rd_kafka_error_name(rd_kafka_ConsumerGroupDescription_error(ds[0])), ErrorText(rd_kafka_ConsumerGroupDescription_error(ds[0])));
      return;
    }
    for (size_t i = 0; i < n; i++) {
      GroupDescriptionOut d;
      d.group_id = rd_kafka_ConsumerGroupDescription_group_id(ds[i]);
      d.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(ds[i]));
      d.members = rd_kafka_ConsumerGroupDescription_member_count(ds[i]);
      const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(ds[i]);
      if (e != nullptr) d.error = ErrorText(e);
      out_.push_back(std::move(d));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, out_.size());
    for (size_t i = 0; i < out_.size(); i++) {
      Napi::Object d = Napi::Object::New(env);
      d.Set("groupId", out_[i].group_id);
      d.Set("state", out_[i].state);
      d.Set("members", static_cast<double>(out_[i].members));
      if (!out_[i].error.empty()) d.Set("error", out_[i].error);
      out.Set(static_cast<uint32_t>(i), d);
    }
    deferred_.Resolve(out);
  }

 private:
  std::vector<std::string> groups_;
  std::vector<GroupDescriptionOut> out_;
};

class ListGroupOffsetsWorker : public GroupWorker {
 public:
  // `all`: every partition the group has offsets for (librdkafka takes a NULL partition list for that)
  ListGroupOffsetsWorker(Napi::Env env, std::shared_ptr<HandleSlot> slot, std::shared_ptr<rd_kafka_t> rk, std::string group, bool all,
                         std::vector<TopicPartitionIn> partitions, int timeout_ms)
      : GroupWorker(env, std::move(slot), std::move(rk), "listConsumerGroupOffsets", RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout_ms),
        group_(std::move(group)), all_(all), partitions_(std::move(partitions)) {}

  void Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (!all_) {
      parts = rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
      for (auto& p : partitions_) rd_kafka_topic_partition_list_add(parts, p.topic.c_str(), p.partition);
    }
    request_ = rd_kafka_ListConsumerGroupOffsets_new(group_.c_str(), parts);
    if (parts != nullptr) rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_ListConsumerGroupOffsets(rk_.get(), &request_, 1, opts, q);
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_group_result_t** gs =
        rd_kafka_ListConsumerGroupOffsets_result_groups(rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    std::string code;
    std::string failure;
    if (!ReadGroupOffsets(gs, n, group_, &code, &failure, &out_)) Fail(code, failure);
  }

  void Finish() override {
    if (request_ != nullptr) rd_kafka_ListConsumerGroupOffsets_destroy(request_);
    request_ = nullptr;
  }

  void OnOK() override { deferred_.Resolve(OffsetsToJs(Env(), out_)); }

 private:
  std::string group_;
  bool all_;
  std::vector<TopicPartitionIn> partitions_;
  rd_kafka_ListConsumerGroupOffsets_t* request_ = nullptr;
  std::vector<GroupOffsetOut> out_;
};

class AlterGroupOffsetsWorker : public GroupWorker {
 public:
  AlterGroupOffsetsWorker(Napi::Env env, std::shared_ptr<HandleSlot> slot, std::shared_ptr<rd_kafka_t> rk, std::string group,
                          std::vector<TopicPartitionIn> offsets, int timeout_ms)
      : GroupWorker(env, std::move(slot), std::move(rk), "alterConsumerGroupOffsets", RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, timeout_ms),
        group_(std::move(group)), offsets_(std::move(offsets)) {}

  void Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(static_cast<int>(offsets_.size()));
    for (auto& o : offsets_) {
      rd_kafka_topic_partition_t* p = rd_kafka_topic_partition_list_add(parts, o.topic.c_str(), o.partition);
      p->offset = o.offset;
      if (o.has_metadata && !o.metadata.empty()) {
        // the list owns its elements' metadata and frees it with the list
        p->metadata = malloc(o.metadata.size());
        memcpy(p->metadata, o.metadata.data(), o.metadata.size());
        p->metadata_size = o.metadata.size();
      }
    }
    request_ = rd_kafka_AlterConsumerGroupOffsets_new(group_.c_str(), parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_AlterConsumerGroupOffsets(rk_.get(), &request_, 1, opts, q);
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_group_result_t** gs =
        rd_kafka_AlterConsumerGroupOffsets_result_groups(rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    std::string code;
    std::string failure;
    if (!ReadGroupOffsets(gs, n, group_, &code, &failure, &out_)) Fail(code, failure);
  }

  void Finish() override {
    if (request_ != nullptr) rd_kafka_AlterConsumerGroupOffsets_destroy(request_);
    request_ = nullptr;
  }

  void OnOK() override { deferred_.Resolve(OffsetsToJs(Env(), out_)); }

 private:
  std::string group_;
  std::vector<TopicPartitionIn> offsets_;
  rd_kafka_AlterConsumerGroupOffsets_t* request_ = nullptr;
  std::vector<GroupOffsetOut> out_;
};

// The cluster id the brokers report (Kafka's cluster.id, KIP-78) from the handle's metadata; waits up to the timeout
// for a first metadata answer. A broker too old to send one answers null.
class ClusterIdWorker : public Napi::AsyncWorker {
 public:
  ClusterIdWorker(Napi::Env env, std::shared_ptr<rd_kafka_t> rk, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    char* id = rd_kafka_clusterid(rk_.get(), timeout_ms_);
    if (id == nullptr) {
      SetError("_TIMED_OUT: no cluster id within " + std::to_string(timeout_ms_) + " ms");
      return;
    }
    id_ = id;
    rd_kafka_mem_free(rk_.get(), id);
  }
  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), id_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;
  int timeout_ms_;
  std::string id_;
};

// ---- argument checks: a bad argument rejects the returned promise with a TypeError naming the field ----

struct BadArgument {
  std::string message;
};

Napi::Value Rejected(Napi::Env env, const Napi::Error& e) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(e.Value());
  return d.Promise();
}

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsString()) return "\"" + v.As<Napi::String>().Utf8Value() + "\"";
  if (v.IsNumber() || v.IsBoolean()) return v.ToString().Utf8Value();
  if (v.IsArray()) return "an array";
  return "an object";
}

int TimeoutArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return 10000;
  // librdkafka's request.timeout.ms range for admin requests
  double d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1 && d <= 3600000 && std::floor(d) == d)) {
    throw BadArgument{"timeoutMs must be an integer from 1 to 3600000 (got " + Describe(info[i]) + ")"};
  }
  return static_cast<int>(d);
}

std::string GroupArg(const Napi::Value& v, const std::string& field) {
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty()) {
    throw BadArgument{field + " must be a non-empty string (got " + Describe(v) + ")"};
  }
  return v.As<Napi::String>().Utf8Value();
}

int64_t IntegerField(const Napi::Object& o, const char* key, const std::string& path, double max) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= max && std::floor(d) == d)) {
    throw BadArgument{path + "." + key + " must be an integer >= 0 (got " + Describe(v) + ")"};
  }
  return static_cast<int64_t>(d);
}

// [{ topic, partition, offset?, metadata? }]; `with_offset` requires offset (and allows metadata)
std::vector<TopicPartitionIn> PartitionsArg(const Napi::Value& v, const std::string& field, bool with_offset) {
  if (!v.IsArray()) throw BadArgument{field + " must be an array (got " + Describe(v) + ")"};
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<TopicPartitionIn> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::string path = field + "[" + std::to_string(i) + "]";
    Napi::Value e = arr.Get(i);
    if (!e.IsObject() || e.IsArray()) throw BadArgument{path + " must be an object (got " + Describe(e) + ")"};
    Napi::Object o = e.As<Napi::Object>();
    TopicPartitionIn p;
    p.topic = GroupArg(o.Get("topic"), path + ".topic");
    p.partition = static_cast<int32_t>(IntegerField(o, "partition", path, 2147483647.0));
    if (with_offset) {
      p.offset = IntegerField(o, "offset", path, 9007199254740991.0);
      Napi::Value m = o.Get("metadata");
      if (!m.IsUndefined() && !m.IsNull()) {
        if (!m.IsString()) throw BadArgument{path + ".metadata must be a string (got " + Describe(m) + ")"};
        p.has_metadata = true;
        p.metadata = m.As<Napi::String>().Utf8Value();
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

// A topic's identity: the id Kafka gave it when it was created (KIP-516), which a topic deleted and created again
// under the same name does not keep.
struct TopicIdentity {
  std::string name;
  std::string id;  // base64, as Kafka's tools print it; empty when the topic could not be described
  std::string error;
};

class DescribeTopicsWorker : public Napi::AsyncWorker {
 public:
  DescribeTopicsWorker(Napi::Env env, std::shared_ptr<rd_kafka_t> rk, std::vector<std::string> topics, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), topics_(std::move(topics)),
        timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<const char*> names;
    for (auto& t : topics_) names.push_back(t.c_str());
    rd_kafka_TopicCollection_t* topics = rd_kafka_TopicCollection_of_topic_names(names.data(), names.size());
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_.get());
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_DESCRIBETOPICS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_DescribeTopics(rk_.get(), topics, opts, q);
    rd_kafka_event_t* ev = WaitFor(q, timeout_ms_);
    if (ev == nullptr) {
      SetError("describeTopics: timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      SetError(std::string("describeTopics: ") + rd_kafka_err2name(rd_kafka_event_error(ev)) + ": " + rd_kafka_event_error_string(ev));
    } else {
      size_t n = 0;
      const rd_kafka_TopicDescription_t** ds = rd_kafka_DescribeTopics_result_topics(rd_kafka_event_DescribeTopics_result(ev), &n);
      for (size_t i = 0; i < n; i++) {
        TopicIdentity t;
        t.name = rd_kafka_TopicDescription_name(ds[i]);
        const rd_kafka_error_t* err = rd_kafka_TopicDescription_error(ds[i]);
        if (err != nullptr && rd_kafka_error_code(err) != RD_KAFKA_RESP_ERR_NO_ERROR) {
          t.error = std::string(rd_kafka_error_name(err)) + ": " + rd_kafka_error_string(err);
        } else {
          const rd_kafka_Uuid_t* id = rd_kafka_TopicDescription_topic_id(ds[i]);
          if (id != nullptr) t.id = rd_kafka_Uuid_base64str(id);
        }
        results_.push_back(std::move(t));
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_TopicCollection_destroy(topics);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    for (auto& t : results_) {
      Napi::Object o = Napi::Object::New(env);
      if (!t.id.empty()) o.Set("topicId", t.id);
      if (!t.error.empty()) o.Set("error", t.error);
      out.Set(t.name, o);
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;
  std::vector<std::string> topics_;
  int timeout_ms_;
  std::vector<TopicIdentity> results_;
};

struct ListedOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string error;
};

// ListOffsets (earliest or latest) with read_committed isolation, as the forwarder's consumer reads: `latest` is the
// last stable offset, where that consumer would start.
class ListOffsetsWorker : public Napi::AsyncWorker {
 public:
  ListOffsetsWorker(Napi::Env env, std::shared_ptr<rd_kafka_t> rk, std::vector<TopicPartitionIn> partitions, int64_t spec, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(std::move(rk)), partitions_(std::move(partitions)),
        spec_(spec), timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
    for (auto& p : partitions_) rd_kafka_topic_partition_list_add(list, p.topic.c_str(), p.partition)->offset = spec_;
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_.get());
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_.get(), RD_KAFKA_ADMIN_OP_LISTOFFSETS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_error_t* iso = rd_kafka_AdminOptions_set_isolation_level(opts, RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED);
    if (iso != nullptr) rd_kafka_error_destroy(iso);
    rd_kafka_ListOffsets(rk_.get(), list, opts, q);
    rd_kafka_event_t* ev = WaitFor(q, timeout_ms_);
    if (ev == nullptr) {
      SetError("listOffsets: timed out");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      SetError(std::string("listOffsets: ") + rd_kafka_err2name(rd_kafka_event_error(ev)) + ": " + rd_kafka_event_error_string(ev));
    } else {
      size_t n = 0;
      const rd_kafka_ListOffsetsResultInfo_t** infos = rd_kafka_ListOffsets_result_infos(rd_kafka_event_ListOffsets_result(ev), &n);
      for (size_t i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t* tp = rd_kafka_ListOffsetsResultInfo_topic_partition(infos[i]);
        ListedOffset o;
        o.topic = tp->topic;
        o.partition = tp->partition;
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          o.error = std::string(rd_kafka_err2name(tp->err)) + ": " + rd_kafka_err2str(tp->err);
        } else {
          o.offset = tp->offset;
          o.leader_epoch = rd_kafka_topic_partition_get_leader_epoch(tp);
        }
        results_.push_back(std::move(o));
      }
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_partition_list_destroy(list);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, results_.size());
    uint32_t i = 0;
    for (auto& r : results_) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("topic", r.topic);
      o.Set("partition", r.partition);
      if (!r.error.empty()) {
        o.Set("error", r.error);
      } else {
        o.Set("offset", Napi::Number::New(env, static_cast<double>(r.offset)));
        if (r.leader_epoch >= 0) o.Set("leaderEpoch", r.leader_epoch);
      }
      out.Set(i++, o);
    }
    deferred_.Resolve(out);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<rd_kafka_t> rk_;
  std::vector<TopicPartitionIn> partitions_;
  int64_t spec_;
  int timeout_ms_;
  std::vector<ListedOffset> results_;
};


}  // namespace

Napi::Function Admin::Define(Napi::Env env) {
  return DefineClass(env, "Admin",
                     {
                         InstanceMethod<&Admin::DescribeTopicConfigs>("describeTopicConfigs"),
                         InstanceMethod<&Admin::AlterTopicConfigs>("alterTopicConfigs"),
                         InstanceMethod<&Admin::ListConsumerGroups>("listConsumerGroups"),
                         InstanceMethod<&Admin::DescribeConsumerGroups>("describeConsumerGroups"),
                         InstanceMethod<&Admin::ListConsumerGroupOffsets>("listConsumerGroupOffsets"),
                         InstanceMethod<&Admin::AlterConsumerGroupOffsets>("alterConsumerGroupOffsets"),
                         InstanceMethod<&Admin::ClusterId>("clusterId"),
                         InstanceMethod<&Admin::DescribeTopics>("describeTopics"),
                         InstanceMethod<&Admin::ListOffsets>("listOffsets"),
                         InstanceMethod<&Admin::Close>("close"),
                         InstanceMethod<&Admin::RetiredHandles>("retiredHandles"),
                     });
}

// Destroys a handle off the calling thread: rd_kafka_destroy waits for its broker threads, and the last holder may be
// the JavaScript thread (close(), or a request's completion).
void DestroyDetached(rd_kafka_t* rk) { std::thread([rk] { rd_kafka_destroy(rk); }).detach(); }

HandleSlot::~HandleSlot() { rd_kafka_conf_destroy(conf_); }

std::shared_ptr<rd_kafka_t> HandleSlot::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return nullptr;
  if (rk_) return rk_;
  rd_kafka_conf_t* conf = rd_kafka_conf_dup(conf_);
  char errstr[512];
  // A consumer handle with a group id of its own (never joined, nothing committed), not a producer handle: when a
  // ListConsumerGroupOffsets answer says NOT_COORDINATOR (a group coordinator still loading, e.g. right after a broker
  // start), librdkafka 2.12 asks the handle's own consumer group to look its coordinator up again, and a producer
  // handle has none: it dereferences a null group and the process dies (seen as SIGSEGV in rd_kafka_cgrp_op).
  char group[96];
  snprintf(group, sizeof(group), "strait-admin-%p-%d", static_cast<void*>(this), generation_++);
  rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(errstr);
  }
  rk_ = std::shared_ptr<rd_kafka_t>(rk, DestroyDetached);
  return rk_;
}

void HandleSlot::Retire(const std::shared_ptr<rd_kafka_t>& rk) {
  std::lock_guard<std::mutex> lock(mu_);
  if (rk_ != rk) return;
  rk_.reset();
  retired_++;
}

void HandleSlot::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  rk_.reset();
}

int HandleSlot::Retired() {
  std::lock_guard<std::mutex> lock(mu_);
  return retired_;
}

// new Admin({ ...librdkafka properties }): the first handle is made here, so a property librdkafka refuses throws now
Admin::Admin(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Admin>(info) {
  Napi::Env env = info.Env();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  try {
    if (info.Length() > 0 && info[0].IsObject()) ApplyProps(env, conf, info[0].As<Napi::Object>(), "admin");
  } catch (...) {
    rd_kafka_conf_destroy(conf);
    throw;
  }
  rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr));
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
  slot_ = std::make_shared<HandleSlot>(conf);
  try {
    slot_->Get();
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
}

Admin::~Admin() = default;

// describeTopicConfigs(topics: string[], timeoutMs) -> Promise<{ [topic]: { [name]: entry } }>
Napi::Value Admin::DescribeTopicConfigs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  std::shared_ptr<rd_kafka_t> rk = Handle(&why);
  if (!rk) throw Napi::Error::New(env, why);
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> topics;
  for (uint32_t i = 0; i < arr.Length(); i++) topics.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  int timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 10000;
  auto* w = new DescribeWorker(env, rk, std::move(topics), timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// alterTopicConfigs(topic, { name: value }, deleteNames: string[], timeoutMs) -> Promise<void>
Napi::Value Admin::AlterTopicConfigs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string why;
  std::shared_ptr<rd_kafka_t> rk = Handle(&why);
  if (!rk) throw Napi::Error::New(env, why);
  std::string topic = info[0].As<Napi::String>().Utf8Value();
  std::vector<std::pair<std::string, std::string>> set;
  Napi::Object obj = info[1].As<Napi::Object>();
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    set.emplace_back(k, obj.Get(k).ToString().Utf8Value());
  }
  std::vector<std::string> del;
  if (info.Length() > 2 && info[2].IsArray()) {
    Napi::Array d = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < d.Length(); i++) del.push_back(d.Get(i).As<Napi::String>().Utf8Value());
  }
  int timeout = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 10000;
  auto* w = new AlterWorker(env, rk, topic, std::move(set), std::move(del), timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// listConsumerGroups(timeoutMs?) -> Promise<{ groupId, state, isSimple }[]>
Napi::Value Admin::ListConsumerGroups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "listConsumerGroups: " + why));
    auto* w = new ListGroupsWorker(env, slot_, rk, TimeoutArg(info, 0));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "listConsumerGroups: " + e.message));
  }
}

// describeConsumerGroups(groups: string[], timeoutMs?) -> Promise<{ groupId, state, members, error? }[]>
Napi::Value Admin::DescribeConsumerGroups(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "describeConsumerGroups: " + why));
    if (!info[0].IsArray()) throw BadArgument{"groups must be an array of group ids (got " + Describe(info[0]) + ")"};
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::string> groups;
    for (uint32_t i = 0; i < arr.Length(); i++) groups.push_back(GroupArg(arr.Get(i), "groups[" + std::to_string(i) + "]"));
    int timeout = TimeoutArg(info, 1);
    if (groups.empty()) return Rejected(env, Napi::TypeError::New(env, "describeConsumerGroups: groups is empty"));
    auto* w = new DescribeGroupsWorker(env, slot_, rk, std::move(groups), timeout);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "describeConsumerGroups: " + e.message));
  }
}

// listConsumerGroupOffsets(group, partitions: { topic, partition }[] | null, timeoutMs?)
//   -> Promise<{ topic, partition, offset (-1: none), metadata?, error? }[]>
Napi::Value Admin::ListConsumerGroupOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "listConsumerGroupOffsets: " + why));
    std::string group = GroupArg(info[0], "group");
    bool all = info[1].IsNull() || info[1].IsUndefined();
    std::vector<TopicPartitionIn> partitions;
    if (!all) partitions = PartitionsArg(info[1], "partitions", false);
    int timeout = TimeoutArg(info, 2);
    // librdkafka refuses an empty list (NULL means all); nothing asked, nothing to answer
    if (!all && partitions.empty()) return Rejected(env, Napi::TypeError::New(env, "listConsumerGroupOffsets: partitions is empty (pass null for all)"));
    auto* w = new ListGroupOffsetsWorker(env, slot_, rk, std::move(group), all, std::move(partitions), timeout);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "listConsumerGroupOffsets: " + e.message));
  }
}

// alterConsumerGroupOffsets(group, offsets: { topic, partition, offset, metadata? }[], timeoutMs?)
//   -> Promise<{ topic, partition, offset, metadata?, error? }[]>
Napi::Value Admin::AlterConsumerGroupOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "alterConsumerGroupOffsets: " + why));
    std::string group = GroupArg(info[0], "group");
    std::vector<TopicPartitionIn> offsets = PartitionsArg(info[1], "offsets", true);
    int timeout = TimeoutArg(info, 2);
    if (offsets.empty()) return Rejected(env, Napi::TypeError::New(env, "alterConsumerGroupOffsets: offsets is empty"));
    auto* w = new AlterGroupOffsetsWorker(env, slot_, rk, std::move(group), std::move(offsets), timeout);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "alterConsumerGroupOffsets: " + e.message));
  }
}

// clusterId(timeoutMs = 10000) -> Promise<string>
Napi::Value Admin::ClusterId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int timeout;
  try {
    timeout = TimeoutArg(info, 0);
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, e.message));
  }
  std::string why;
  std::shared_ptr<rd_kafka_t> rk = Handle(&why);
  if (!rk) return Rejected(env, Napi::Error::New(env, why));
  auto* w = new ClusterIdWorker(env, rk, timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// describeTopics(topics: string[], timeoutMs?) -> Promise<{ [topic]: { topicId?, error? } }>
Napi::Value Admin::DescribeTopics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "describeTopics: " + why));
    if (!info[0].IsArray()) throw BadArgument{"topics must be an array of topic names (got " + Describe(info[0]) + ")"};
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<std::string> topics;
    for (uint32_t i = 0; i < arr.Length(); i++) topics.push_back(GroupArg(arr.Get(i), "topics[" + std::to_string(i) + "]"));
    int timeout = TimeoutArg(info, 1);
    if (topics.empty()) return Rejected(env, Napi::TypeError::New(env, "describeTopics: topics is empty"));
    auto* w = new DescribeTopicsWorker(env, rk, std::move(topics), timeout);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "describeTopics: " + e.message));
  }
}

// listOffsets(partitions: { topic, partition }[], spec: "earliest" | "latest", timeoutMs?)
//   -> Promise<{ topic, partition, offset?, leaderEpoch?, error? }[]>
Napi::Value Admin::ListOffsets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    std::string why;
    std::shared_ptr<rd_kafka_t> rk = Handle(&why);
    if (!rk) return Rejected(env, Napi::Error::New(env, "listOffsets: " + why));
    std::vector<TopicPartitionIn> partitions = PartitionsArg(info[0], "partitions", false);
    std::string spec = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (spec != "earliest" && spec != "latest") throw BadArgument{"spec must be \"earliest\" or \"latest\" (got " + Describe(info[1]) + ")"};
    int timeout = TimeoutArg(info, 2);
    if (partitions.empty()) return Rejected(env, Napi::TypeError::New(env, "listOffsets: partitions is empty"));
    auto* w = new ListOffsetsWorker(env, rk, std::move(partitions), spec == "earliest" ? RD_KAFKA_OFFSET_SPEC_EARLIEST : RD_KAFKA_OFFSET_SPEC_LATEST, timeout);
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, "listOffsets: " + e.message));
  }
}

Napi::Value Admin::Close(const Napi::CallbackInfo& info) {
  // Requests still in flight hold their own reference; the handle goes when the last of them completes.
  slot_->Close();
  return info.Env().Undefined();
}

// retiredHandles() -> number: handles given up because a consumer group request got no answer in time (tests, status)
Napi::Value Admin::RetiredHandles(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), slot_->Retired()); }

// The handle for the next request, or none with the reason when closed or when librdkafka refuses to make a new one.
std::shared_ptr<rd_kafka_t> Admin::Handle(std::string* why) {
  std::shared_ptr<rd_kafka_t> rk;
  try {
    rk = slot_->Get();
  } catch (const std::runtime_error& e) {
    *why = std::string("cannot create a new admin handle: ") + e.what();
    return nullptr;
  }
  if (!rk) *why = "Admin is closed";
  return rk;
}

}  // namespace strait
