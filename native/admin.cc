// The Admin object: operations node-rdkafka does not expose (topic configs, topic ids, offsets, consumer groups, the
// cluster id), each an AdminRequest (admin_request.h; the requests in admin_topics.cc and admin_groups.cc) queued on
// libuv's thread pool over the handle its HandleSlot lends.
#include "admin.h"

#include "admin_request.h"
#include "conf.h"

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace strait {

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


namespace {

Napi::Value Rejected(Napi::Env env, const Napi::Error& e) {
  Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
  d.Reject(e.Value());
  return d.Promise();
}

}  // namespace

// Every method has one shape: the handle (a closed Admin rejects), the request built from the arguments (a bad one
// rejects with a TypeError naming the field), queued; the promise settles when librdkafka answers or the timeout ends.
Napi::Value Admin::Run(const Napi::CallbackInfo& info, const char* name, MakeRequest make) {
  Napi::Env env = info.Env();
  std::string why;
  std::shared_ptr<rd_kafka_t> rk = Handle(&why);
  if (!rk) return Rejected(env, Napi::Error::New(env, std::string(name) + ": " + why));
  AdminRequest* request;
  try {
    request = make(info, AdminTarget{slot_, rk});
  } catch (const BadArgument& e) {
    return Rejected(env, Napi::TypeError::New(env, std::string(name) + ": " + e.message));
  }
  Napi::Promise p = request->Promise();
  request->Queue();
  return p;
}

Napi::Value Admin::DescribeTopicConfigs(const Napi::CallbackInfo& info) { return Run(info, "describeTopicConfigs", DescribeTopicConfigsRequest); }
Napi::Value Admin::AlterTopicConfigs(const Napi::CallbackInfo& info) { return Run(info, "alterTopicConfigs", AlterTopicConfigsRequest); }
Napi::Value Admin::ListConsumerGroups(const Napi::CallbackInfo& info) { return Run(info, "listConsumerGroups", ListConsumerGroupsRequest); }
Napi::Value Admin::DescribeConsumerGroups(const Napi::CallbackInfo& info) {
  return Run(info, "describeConsumerGroups", DescribeConsumerGroupsRequest);
}
Napi::Value Admin::ListConsumerGroupOffsets(const Napi::CallbackInfo& info) {
  return Run(info, "listConsumerGroupOffsets", ListConsumerGroupOffsetsRequest);
}
Napi::Value Admin::AlterConsumerGroupOffsets(const Napi::CallbackInfo& info) {
  return Run(info, "alterConsumerGroupOffsets", AlterConsumerGroupOffsetsRequest);
}
Napi::Value Admin::ClusterId(const Napi::CallbackInfo& info) { return Run(info, "clusterId", ClusterIdRequest); }
Napi::Value Admin::DescribeTopics(const Napi::CallbackInfo& info) { return Run(info, "describeTopics", DescribeTopicsRequest); }
Napi::Value Admin::ListOffsets(const Napi::CallbackInfo& info) { return Run(info, "listOffsets", ListOffsetsRequest); }

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
