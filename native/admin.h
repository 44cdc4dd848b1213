// Admin client for what node-rdkafka lacks: topic config describe and incremental alter, consumer group listing,
// description and committed offsets (list and alter).
#pragma once

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <memory>
#include <mutex>
#include <string>

namespace strait {

class AdminRequest;
struct AdminTarget;

// The librdkafka handle an Admin sends its requests on. A consumer group request the caller gave up on (no answer
// within its timeout: the group coordinator is unreachable) retires the handle, and the next request gets a new one.
// Why: librdkafka 2.12 keeps a request that waits for its coordinator after the operation timed out, sends it when the
// coordinator comes back, and then aborts the process on the freed operation (`rd_kafka_enq_once_del_source_return:
// Assertion 'eonce->refcnt > 0'`, upstream confluentinc/librdkafka#5397, unreleased). Destroying the handle while the
// operation is still alive fails the waiting request cleanly, so a group request's own librdkafka timeout is set well
// past the caller's (kAbandonMarginMs) and its handle is destroyed as soon as the last request on it returns.
class HandleSlot {
 public:
  // takes ownership of `conf` (a template: each handle gets a copy with a group id of its own)
  explicit HandleSlot(rd_kafka_conf_t* conf) : conf_(conf) {}
  ~HandleSlot();
  HandleSlot(const HandleSlot&) = delete;
  HandleSlot& operator=(const HandleSlot&) = delete;
  // the current handle, created if there is none; empty once closed; throws std::runtime_error if librdkafka refuses
  std::shared_ptr<rd_kafka_t> Get();
  // `rk` is no longer handed out (if it is still the current one); it is destroyed when its last request returns
  void Retire(const std::shared_ptr<rd_kafka_t>& rk);
  void Close();
  int Retired();

 private:
  std::mutex mu_;
  rd_kafka_conf_t* conf_;
  std::shared_ptr<rd_kafka_t> rk_;
  int generation_ = 0;
  int retired_ = 0;
  bool closed_ = false;
};

class Admin : public Napi::ObjectWrap<Admin> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Admin(const Napi::CallbackInfo& info);
  ~Admin() override;

 private:
  Napi::Value DescribeTopicConfigs(const Napi::CallbackInfo& info);
  Napi::Value AlterTopicConfigs(const Napi::CallbackInfo& info);
  Napi::Value ListConsumerGroups(const Napi::CallbackInfo& info);
  Napi::Value DescribeConsumerGroups(const Napi::CallbackInfo& info);
  Napi::Value ListConsumerGroupOffsets(const Napi::CallbackInfo& info);
  Napi::Value AlterConsumerGroupOffsets(const Napi::CallbackInfo& info);
  Napi::Value DescribeTopics(const Napi::CallbackInfo& info);
  Napi::Value ListOffsets(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value ClusterId(const Napi::CallbackInfo& info);
  Napi::Value RetiredHandles(const Napi::CallbackInfo& info);
  std::shared_ptr<rd_kafka_t> Handle(std::string* why);
  Napi::Value Run(const Napi::CallbackInfo& info, const char* name, AdminRequest* (*make)(const Napi::CallbackInfo&, AdminTarget));
  // Every request in flight holds the handle it runs on, so close() (or garbage collection of this object) while a
  // request runs on the thread pool does not destroy the handle under it: the last holder destroys it.
  std::shared_ptr<HandleSlot> slot_;
};

}  // namespace strait
