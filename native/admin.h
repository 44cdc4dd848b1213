// Admin client for what node-rdkafka lacks: topic config describe and incremental alter, consumer group listing,
// description and committed offsets (list and alter).
#pragma once

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <memory>

namespace strait {

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
  Napi::Value Close(const Napi::CallbackInfo& info);
  // Shared with every request in flight, so close() (or garbage collection of this object) while a request runs on
  // the thread pool does not destroy the handle under it: the last holder destroys it.
  std::shared_ptr<rd_kafka_t> rk_;
};

}  // namespace strait
