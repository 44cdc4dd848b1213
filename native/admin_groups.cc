// Consumer group admin requests: list, describe, and the committed offsets of one group (list and alter). Each runs as
// an AdminRequest whose handle is retired when its caller gives up (see HandleSlot in admin.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "admin_request.h"

namespace strait {

namespace {

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


struct GroupOffsetOut {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  bool has_metadata = false;
  std::string metadata;
  std::string error;
  std::string error_code;  // librdkafka's error name, when `error` is set
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
      o.error = ErrorText(p.err);
      o.error_code = rd_kafka_err2name(p.err);
    }
    out->push_back(std::move(o));
  }
  std::sort(out->begin(), out->end(), [](const GroupOffsetOut& a, const GroupOffsetOut& b) {
    return a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition;
  });
  return true;
}

class ListGroupsWorker : public AdminRequest {
 public:
  ListGroupsWorker(Napi::Env env, AdminTarget target, int timeout_ms)
      : AdminRequest(env, std::move(target), "listConsumerGroups", RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, timeout_ms, Abandon::kRetireHandle) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    rd_kafka_ListConsumerGroups(rk(), opts, q);
    return true;
  }

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

class DescribeGroupsWorker : public AdminRequest {
 public:
  DescribeGroupsWorker(Napi::Env env, AdminTarget target, std::vector<std::string> groups, int timeout_ms)
      : AdminRequest(env, std::move(target), "describeConsumerGroups", RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, timeout_ms, Abandon::kRetireHandle),
        groups_(std::move(groups)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    std::vector<const char*> names;
    for (auto& g : groups_) names.push_back(g.c_str());
    rd_kafka_DescribeConsumerGroups(rk(), names.data(), names.size(), opts, q);
    return true;
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

class ListGroupOffsetsWorker : public AdminRequest {
 public:
  // `all`: every partition the group has offsets for (librdkafka takes a NULL partition list for that)
  ListGroupOffsetsWorker(Napi::Env env, AdminTarget target, std::string group, bool all,
                         std::vector<TopicPartitionIn> partitions, int timeout_ms)
      : AdminRequest(env, std::move(target), "listConsumerGroupOffsets", RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout_ms, Abandon::kRetireHandle),
        group_(std::move(group)), all_(all), partitions_(std::move(partitions)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    rd_kafka_topic_partition_list_t* parts = nullptr;
    if (!all_) {
      parts = rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
      for (auto& p : partitions_) rd_kafka_topic_partition_list_add(parts, p.topic.c_str(), p.partition);
    }
    request_ = rd_kafka_ListConsumerGroupOffsets_new(group_.c_str(), parts);
    if (parts != nullptr) rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_ListConsumerGroupOffsets(rk(), &request_, 1, opts, q);
    return true;
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

class AlterGroupOffsetsWorker : public AdminRequest {
 public:
  AlterGroupOffsetsWorker(Napi::Env env, AdminTarget target, std::string group,
                          std::vector<TopicPartitionIn> offsets, int timeout_ms)
      : AdminRequest(env, std::move(target), "alterConsumerGroupOffsets", RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, timeout_ms, Abandon::kRetireHandle),
        group_(std::move(group)), offsets_(std::move(offsets)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
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
    rd_kafka_AlterConsumerGroupOffsets(rk(), &request_, 1, opts, q);
    return true;
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

}  // namespace

// listConsumerGroups(timeoutMs?) -> Promise<{ groupId, state, isSimple }[]>
AdminRequest* ListConsumerGroupsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  return new ListGroupsWorker(info.Env(), std::move(target), TimeoutArg(info, 0));
}

// describeConsumerGroups(groups: string[], timeoutMs?) -> Promise<{ groupId, state, members, error? }[]>
AdminRequest* DescribeConsumerGroupsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::vector<std::string> groups = StringsArg(info[0], "groups", "group ids");
  return new DescribeGroupsWorker(info.Env(), std::move(target), std::move(groups), TimeoutArg(info, 1));
}

// listConsumerGroupOffsets(group, partitions: { topic, partition }[] | null, timeoutMs?)
//   -> Promise<{ topic, partition, offset (-1: none), metadata?, error?, errorCode? }[]>
AdminRequest* ListConsumerGroupOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::string group = StringArg(info[0], "group");
  bool all = info[1].IsNull() || info[1].IsUndefined();
  std::vector<TopicPartitionIn> partitions;
  if (!all) partitions = PartitionsArg(info[1], "partitions", false);
  int timeout = TimeoutArg(info, 2);
  // librdkafka refuses an empty list (NULL means all); nothing asked, nothing to answer
  if (!all && partitions.empty()) throw BadArgument{"partitions is empty (pass null for all)"};
  return new ListGroupOffsetsWorker(info.Env(), std::move(target), std::move(group), all, std::move(partitions), timeout);
}

// alterConsumerGroupOffsets(group, offsets: { topic, partition, offset, metadata? }[], timeoutMs?)
//   -> Promise<{ topic, partition, offset, metadata?, error?, errorCode? }[]>
AdminRequest* AlterConsumerGroupOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::string group = StringArg(info[0], "group");
  std::vector<TopicPartitionIn> offsets = PartitionsArg(info[1], "offsets", true);
  int timeout = TimeoutArg(info, 2);
  if (offsets.empty()) throw BadArgument{"offsets is empty"};
  return new AlterGroupOffsetsWorker(info.Env(), std::move(target), std::move(group), std::move(offsets), timeout);
}

}  // namespace strait
