// Admin operations node-rdkafka does not expose (topic config describe/alter), run on libuv's thread pool so the
// JavaScript thread never blocks on a broker round trip.
#include "admin.h"

#include "conf.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

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
  std::vector<ConfigEntry> entries;
};

// Waits for the admin result event on a private queue.
rd_kafka_event_t* WaitFor(rd_kafka_queue_t* q, int timeout_ms) { return rd_kafka_queue_poll(q, timeout_ms + 2000); }

class DescribeWorker : public Napi::AsyncWorker {
 public:
  DescribeWorker(Napi::Env env, rd_kafka_t* rk, std::vector<std::string> topics, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(rk), topics_(std::move(topics)),
        timeout_ms_(timeout_ms) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<rd_kafka_ConfigResource_t*> res;
    for (auto& t : topics_) res.push_back(rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t.c_str()));
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_DescribeConfigs(rk_, res.data(), res.size(), opts, q);
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
  rd_kafka_t* rk_;
  std::vector<std::string> topics_;
  int timeout_ms_;
  std::vector<ResourceResult> results_;
};

class AlterWorker : public Napi::AsyncWorker {
 public:
  AlterWorker(Napi::Env env, rd_kafka_t* rk, std::string topic, std::vector<std::pair<std::string, std::string>> set,
              std::vector<std::string> del, int timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), rk_(rk), topic_(std::move(topic)),
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
    rd_kafka_queue_t* q = rd_kafka_queue_new(rk_);
    rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms_, errstr, sizeof(errstr));
    rd_kafka_IncrementalAlterConfigs(rk_, &res, 1, opts, q);
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
  rd_kafka_t* rk_;
  std::string topic_;
  std::vector<std::pair<std::string, std::string>> set_;
  std::vector<std::string> del_;
  int timeout_ms_;
};

}  // namespace

Napi::Function Admin::Define(Napi::Env env) {
  return DefineClass(env, "Admin",
                     {
                         InstanceMethod<&Admin::DescribeTopicConfigs>("describeTopicConfigs"),
                         InstanceMethod<&Admin::AlterTopicConfigs>("alterTopicConfigs"),
                         InstanceMethod<&Admin::Close>("close"),
                     });
}

// new Admin({ ...librdkafka properties })
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
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
  if (rk_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw Napi::Error::New(env, errstr);
  }
}

Admin::~Admin() {
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
}

// describeTopicConfigs(topics: string[], timeoutMs) -> Promise<{ [topic]: { [name]: entry } }>
Napi::Value Admin::DescribeTopicConfigs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (rk_ == nullptr) throw Napi::Error::New(env, "Admin is closed");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> topics;
  for (uint32_t i = 0; i < arr.Length(); i++) topics.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  int timeout = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 10000;
  auto* w = new DescribeWorker(env, rk_, std::move(topics), timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// alterTopicConfigs(topic, { name: value }, deleteNames: string[], timeoutMs) -> Promise<void>
Napi::Value Admin::AlterTopicConfigs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (rk_ == nullptr) throw Napi::Error::New(env, "Admin is closed");
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
  auto* w = new AlterWorker(env, rk_, topic, std::move(set), std::move(del), timeout);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Admin::Close(const Napi::CallbackInfo& info) {
  // Pending workers hold rk_; closing is only called once the caller awaited them.
  if (rk_ != nullptr) rd_kafka_destroy(rk_);
  rk_ = nullptr;
  return info.Env().Undefined();
}

}  // namespace strait
