// Topic admin requests: configs (describe, incremental alter), topic ids (describe), earliest/latest offsets, and the
// cluster id. librdkafka answers each within its own timeout, so an abandoned one keeps its handle (Abandon::kAnswered).
// A per-topic or per-partition failure travels with its item as `error` (text) and `errorCode` (librdkafka's name).
#include <string>
#include <utility>
#include <vector>

#include "admin_request.h"

namespace strait {

namespace {

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
  std::string error_code;
  std::vector<ConfigEntry> entries;
};

class DescribeConfigsRequest : public AdminRequest {
 public:
  DescribeConfigsRequest(Napi::Env env, AdminTarget target, std::vector<std::string> topics, int timeout_ms)
      : AdminRequest(env, std::move(target), "describeTopicConfigs", RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms, Abandon::kAnswered),
        topics_(std::move(topics)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    for (auto& t : topics_) resources_.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
    rd_kafka_DescribeConfigs(rk(), resources_.data(), resources_.size(), opts, q);
    return true;
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs = rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      ResourceResult out;
      out.name = rd_kafka_ConfigResource_name(rs[i]);
      rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(rs[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        out.error_code = rd_kafka_err2name(err);
        const char* s = rd_kafka_ConfigResource_error_string(rs[i]);
        out.error = out.error_code + (s != nullptr ? std::string(": ") + s : "");
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

  void Finish() override {
    rd_kafka_ConfigResource_destroy_array(resources_.data(), resources_.size());
    resources_.clear();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    for (auto& r : results_) {
      Napi::Object topic = Napi::Object::New(env);
      if (!r.error.empty()) {
        topic.Set("$error", r.error);
        topic.Set("$errorCode", r.error_code);
      }
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

 private:
  std::vector<std::string> topics_;
  std::vector<rd_kafka_ConfigResource_t*> resources_;
  std::vector<ResourceResult> results_;
};

class AlterConfigsRequest : public AdminRequest {
 public:
  AlterConfigsRequest(Napi::Env env, AdminTarget target, std::string topic, std::vector<std::pair<std::string, std::string>> set,
                      std::vector<std::string> del, int timeout_ms)
      : AdminRequest(env, std::move(target), "alterTopicConfigs", RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS, timeout_ms, Abandon::kAnswered),
        topic_(std::move(topic)), set_(std::move(set)), del_(std::move(del)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    resource_ = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic_.c_str());
    for (auto& kv : set_) {
      rd_kafka_error_t* e = rd_kafka_ConfigResource_add_incremental_config(resource_, kv.first.c_str(), RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                                                                           kv.second.c_str());
      if (e != nullptr) {
        Fail(rd_kafka_error_name(e), std::string(rd_kafka_error_name(e)) + ": " + kv.first + ": " + rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return false;
      }
    }
    for (auto& k : del_) {
      rd_kafka_error_t* e = rd_kafka_ConfigResource_add_incremental_config(resource_, k.c_str(), RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE, nullptr);
      if (e != nullptr) rd_kafka_error_destroy(e);
    }
    rd_kafka_IncrementalAlterConfigs(rk(), &resource_, 1, opts, q);
    return true;
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs = rd_kafka_IncrementalAlterConfigs_result_resources(rd_kafka_event_IncrementalAlterConfigs_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(rs[i]);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      const char* s = rd_kafka_ConfigResource_error_string(rs[i]);
      Fail(rd_kafka_err2name(err), std::string(rd_kafka_err2name(err)) + (s != nullptr ? std::string(": ") + s : ""));
    }
  }

  void Finish() override {
    if (resource_ != nullptr) rd_kafka_ConfigResource_destroy(resource_);
    resource_ = nullptr;
  }

  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  std::string topic_;
  std::vector<std::pair<std::string, std::string>> set_;
  std::vector<std::string> del_;
  rd_kafka_ConfigResource_t* resource_ = nullptr;
};

// A topic's identity: the id Kafka gave it when it was created (KIP-516), which a topic deleted and created again
// under the same name does not keep.
struct TopicIdentity {
  std::string name;
  std::string id;  // base64, as librdkafka prints it; empty when the topic could not be described
  std::string error;
  std::string error_code;
};

class DescribeTopicsWorker : public AdminRequest {
 public:
  DescribeTopicsWorker(Napi::Env env, AdminTarget target, std::vector<std::string> topics, int timeout_ms)
      : AdminRequest(env, std::move(target), "describeTopics", RD_KAFKA_ADMIN_OP_DESCRIBETOPICS, timeout_ms, Abandon::kAnswered),
        topics_(std::move(topics)) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    std::vector<const char*> names;
    for (auto& t : topics_) names.push_back(t.c_str());
    collection_ = rd_kafka_TopicCollection_of_topic_names(names.data(), names.size());
    rd_kafka_DescribeTopics(rk(), collection_, opts, q);
    return true;
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_TopicDescription_t** ds = rd_kafka_DescribeTopics_result_topics(rd_kafka_event_DescribeTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      TopicIdentity t;
      t.name = rd_kafka_TopicDescription_name(ds[i]);
      const rd_kafka_error_t* err = rd_kafka_TopicDescription_error(ds[i]);
      if (err != nullptr && rd_kafka_error_code(err) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        t.error = ErrorText(err);
        t.error_code = rd_kafka_error_name(err);
      } else {
        const rd_kafka_Uuid_t* id = rd_kafka_TopicDescription_topic_id(ds[i]);
        if (id != nullptr) t.id = rd_kafka_Uuid_base64str(id);
      }
      results_.push_back(std::move(t));
    }
  }

  void Finish() override {
    if (collection_ != nullptr) rd_kafka_TopicCollection_destroy(collection_);
    collection_ = nullptr;
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    for (auto& t : results_) {
      Napi::Object o = Napi::Object::New(env);
      if (!t.id.empty()) o.Set("topicId", t.id);
      if (!t.error.empty()) {
        o.Set("error", t.error);
        o.Set("errorCode", t.error_code);
      }
      out.Set(t.name, o);
    }
    deferred_.Resolve(out);
  }

 private:
  std::vector<std::string> topics_;
  rd_kafka_TopicCollection_t* collection_ = nullptr;
  std::vector<TopicIdentity> results_;
};

struct ListedOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
  int32_t leader_epoch = -1;
  std::string error;
  std::string error_code;
};

// ListOffsets (earliest or latest) with read_committed isolation, as the forwarder's consumer reads: `latest` is the
// last stable offset, where that consumer would start.
class ListOffsetsWorker : public AdminRequest {
 public:
  ListOffsetsWorker(Napi::Env env, AdminTarget target, std::vector<TopicPartitionIn> partitions, int64_t spec, int timeout_ms)
      : AdminRequest(env, std::move(target), "listOffsets", RD_KAFKA_ADMIN_OP_LISTOFFSETS, timeout_ms, Abandon::kAnswered),
        partitions_(std::move(partitions)), spec_(spec) {}

  bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) override {
    list_ = rd_kafka_topic_partition_list_new(static_cast<int>(partitions_.size()));
    for (auto& p : partitions_) rd_kafka_topic_partition_list_add(list_, p.topic.c_str(), p.partition)->offset = spec_;
    rd_kafka_error_t* iso = rd_kafka_AdminOptions_set_isolation_level(opts, RD_KAFKA_ISOLATION_LEVEL_READ_COMMITTED);
    if (iso != nullptr) rd_kafka_error_destroy(iso);
    rd_kafka_ListOffsets(rk(), list_, opts, q);
    return true;
  }

  void Collect(rd_kafka_event_t* ev) override {
    size_t n = 0;
    const rd_kafka_ListOffsetsResultInfo_t** infos = rd_kafka_ListOffsets_result_infos(rd_kafka_event_ListOffsets_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      const rd_kafka_topic_partition_t* tp = rd_kafka_ListOffsetsResultInfo_topic_partition(infos[i]);
      ListedOffset o;
      o.topic = tp->topic;
      o.partition = tp->partition;
      if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        o.error = ErrorText(tp->err);
        o.error_code = rd_kafka_err2name(tp->err);
      } else {
        o.offset = tp->offset;
        o.leader_epoch = rd_kafka_topic_partition_get_leader_epoch(tp);
      }
      results_.push_back(std::move(o));
    }
  }

  void Finish() override {
    if (list_ != nullptr) rd_kafka_topic_partition_list_destroy(list_);
    list_ = nullptr;
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
        o.Set("errorCode", r.error_code);
      } else {
        o.Set("offset", Napi::Number::New(env, static_cast<double>(r.offset)));
        if (r.leader_epoch >= 0) o.Set("leaderEpoch", r.leader_epoch);
      }
      out.Set(i++, o);
    }
    deferred_.Resolve(out);
  }

 private:
  std::vector<TopicPartitionIn> partitions_;
  int64_t spec_;
  rd_kafka_topic_partition_list_t* list_ = nullptr;
  std::vector<ListedOffset> results_;
};

// The cluster id the brokers report (Kafka's cluster.id, KIP-78) from the handle's metadata; waits up to the timeout
// for a first metadata answer. Not an admin operation: it replaces Execute and only shares the rejection's shape.
class ClusterIdWorker : public AdminRequest {
 public:
  ClusterIdWorker(Napi::Env env, AdminTarget target, int timeout_ms)
      : AdminRequest(env, std::move(target), "clusterId", RD_KAFKA_ADMIN_OP_ANY, timeout_ms, Abandon::kAnswered), timeout_ms_(timeout_ms) {}

  void Execute() override {
    char* id = rd_kafka_clusterid(rk(), timeout_ms_);
    if (id == nullptr) {
      Fail("_TIMED_OUT", "_TIMED_OUT: no cluster id within " + std::to_string(timeout_ms_) + " ms");
      return;
    }
    id_ = id;
    rd_kafka_mem_free(rk(), id);
  }
  void OnOK() override { deferred_.Resolve(Napi::String::New(Env(), id_)); }

 protected:
  bool Start(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*) override { return false; }
  void Collect(rd_kafka_event_t*) override {}

 private:
  int timeout_ms_;
  std::string id_;
};

}  // namespace

// describeTopicConfigs(topics: string[], timeoutMs?) -> Promise<{ [topic]: { [name]: entry } }> (a failed topic: $error, $errorCode)
AdminRequest* DescribeTopicConfigsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::vector<std::string> topics = StringsArg(info[0], "topics", "topic names");
  return new DescribeConfigsRequest(info.Env(), std::move(target), std::move(topics), TimeoutArg(info, 1));
}

// alterTopicConfigs(topic, { name: value }, deleteNames: string[], timeoutMs?) -> Promise<void>
AdminRequest* AlterTopicConfigsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::string topic = StringArg(info[0], "topic");
  if (!info[1].IsObject() || info[1].IsArray()) throw BadArgument{"set must be an object of config values (got " + Describe(info[1]) + ")"};
  std::vector<std::pair<std::string, std::string>> set;
  Napi::Object obj = info[1].As<Napi::Object>();
  Napi::Array keys = obj.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = obj.Get(k);
    if (!v.IsString()) throw BadArgument{"set." + k + " must be a string (got " + Describe(v) + ")"};
    set.emplace_back(k, v.As<Napi::String>().Utf8Value());
  }
  std::vector<std::string> del;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) throw BadArgument{"deleteNames must be an array of config names (got " + Describe(info[2]) + ")"};
    Napi::Array d = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < d.Length(); i++) del.push_back(StringArg(d.Get(i), "deleteNames[" + std::to_string(i) + "]"));
  }
  return new AlterConfigsRequest(info.Env(), std::move(target), std::move(topic), std::move(set), std::move(del), TimeoutArg(info, 3));
}

// describeTopics(topics: string[], timeoutMs?) -> Promise<{ [topic]: { topicId?, error?, errorCode? } }>
AdminRequest* DescribeTopicsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::vector<std::string> topics = StringsArg(info[0], "topics", "topic names");
  return new DescribeTopicsWorker(info.Env(), std::move(target), std::move(topics), TimeoutArg(info, 1));
}

// listOffsets(partitions: { topic, partition }[], spec: "earliest" | "latest", timeoutMs?)
//   -> Promise<{ topic, partition, offset?, leaderEpoch?, error?, errorCode? }[]>
AdminRequest* ListOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  std::vector<TopicPartitionIn> partitions = PartitionsArg(info[0], "partitions", false);
  std::string spec = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (spec != "earliest" && spec != "latest") throw BadArgument{"spec must be \"earliest\" or \"latest\" (got " + Describe(info[1]) + ")"};
  int timeout = TimeoutArg(info, 2);
  if (partitions.empty()) throw BadArgument{"partitions is empty"};
  return new ListOffsetsWorker(info.Env(), std::move(target), std::move(partitions),
                               spec == "earliest" ? RD_KAFKA_OFFSET_SPEC_EARLIEST : RD_KAFKA_OFFSET_SPEC_LATEST, timeout);
}

// clusterId(timeoutMs = 10000) -> Promise<string>
AdminRequest* ClusterIdRequest(const Napi::CallbackInfo& info, AdminTarget target) {
  return new ClusterIdWorker(info.Env(), std::move(target), TimeoutArg(info, 0));
}

}  // namespace strait
