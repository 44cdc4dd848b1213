#pragma once
// One admin request of an Admin (admin.h), run on libuv's thread pool so the JavaScript thread never blocks on a broker
// round trip: the request on a private queue with its timeout, the result read off the JavaScript thread, values built
// in OnOK. A failure rejects with `<method>: <NAME>: <message>` and carries librdkafka's error name as `kafkaCode`:
// callers branch on the code, never on the text. Bad arguments reject with a TypeError naming the field.

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <vector>

#include "admin.h"

namespace strait {

// What a request runs on: the handle, and the slot it came from (which retires it, see HandleSlot).
struct AdminTarget {
  std::shared_ptr<HandleSlot> slot;
  std::shared_ptr<rd_kafka_t> rk;
};

// What happens to a request its caller gives up on.
enum class Abandon {
  // librdkafka's own timeout is the caller's, and it answers by then (the result is awaited 2 s longer)
  kAnswered,
  // a consumer group request: librdkafka keeps it alive well past the caller, and the handle is retired the moment the
  // caller gives up (HandleSlot), which fails the waiting request cleanly
  kRetireHandle,
};

class AdminRequest : public Napi::AsyncWorker {
 public:
  AdminRequest(Napi::Env env, AdminTarget target, const char* name, rd_kafka_admin_op_t op, int timeout_ms, Abandon abandon);
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override;
  void OnError(const Napi::Error& e) override;

 protected:
  // Sends the request on `q`; false if it could not be built (after Fail).
  virtual bool Start(rd_kafka_AdminOptions_t* opts, rd_kafka_queue_t* q) = 0;
  // Reads a successful result event (may still Fail on errors inside it).
  virtual void Collect(rd_kafka_event_t* ev) = 0;
  // Frees what Start allocated, once the result is in (or abandoned).
  virtual void Finish() {}
  // `code`: librdkafka's error name of the failure; `why`: the text after the method's name, which starts with it
  void Fail(const std::string& code, const std::string& why);
  rd_kafka_t* rk() const { return target_.rk.get(); }

  Napi::Promise::Deferred deferred_;

 private:
  AdminTarget target_;
  const char* name_;
  rd_kafka_admin_op_t op_;
  int timeout_ms_;
  Abandon abandon_;
  std::string code_;
};

// `NAME: message` of a librdkafka error
std::string ErrorText(const rd_kafka_error_t* e);
std::string ErrorText(rd_kafka_resp_err_t err);

// ---- arguments: a bad one throws BadArgument, which Admin turns into a rejected TypeError naming the field ----

struct BadArgument {
  std::string message;
};

std::string Describe(const Napi::Value& v);
// info[i] as a request timeout in ms (10000 when absent)
int TimeoutArg(const Napi::CallbackInfo& info, size_t i);
std::string StringArg(const Napi::Value& v, const std::string& field);
// a non-empty array of non-empty strings (`noun` says what they name)
std::vector<std::string> StringsArg(const Napi::Value& v, const std::string& field, const char* noun);

struct TopicPartitionIn {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  bool has_metadata = false;
  std::string metadata;
};

// [{ topic, partition, offset?, metadata? }]; `with_offset` requires offset (and allows metadata)
std::vector<TopicPartitionIn> PartitionsArg(const Napi::Value& v, const std::string& field, bool with_offset);

// ---- the requests: each reads its arguments from `info` (throwing BadArgument) and returns the request to queue ----

using MakeRequest = AdminRequest* (*)(const Napi::CallbackInfo& info, AdminTarget target);

// admin_topics.cc
AdminRequest* DescribeTopicConfigsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* AlterTopicConfigsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* DescribeTopicsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* ListOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* ClusterIdRequest(const Napi::CallbackInfo& info, AdminTarget target);

// admin_groups.cc
AdminRequest* ListConsumerGroupsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* DescribeConsumerGroupsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* ListConsumerGroupOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target);
AdminRequest* AlterConsumerGroupOffsetsRequest(const Napi::CallbackInfo& info, AdminTarget target);

}  // namespace strait
