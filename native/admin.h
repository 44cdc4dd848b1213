// Admin client for what node-rdkafka lacks: topic config describe and incremental alter.
#pragma once

#include <napi.h>
#include <librdkafka/rdkafka.h>

namespace strait {

class Admin : public Napi::ObjectWrap<Admin> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Admin(const Napi::CallbackInfo& info);
  ~Admin() override;

 private:
  Napi::Value DescribeTopicConfigs(const Napi::CallbackInfo& info);
  Napi::Value AlterTopicConfigs(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  rd_kafka_t* rk_ = nullptr;
};

}  // namespace strait
