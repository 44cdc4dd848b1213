// strait's N-API addon. Context-aware (every N-API module is): it keeps no static JavaScript state, so it loads in
// the main thread and in any number of worker threads at once. TypeScript validates inputs; C++ only does the work.
#include <napi.h>
#include <librdkafka/rdkafka.h>

#include "admin.h"
#include "forwarder.h"

namespace {

// librdkafka's version string, e.g. "2.12.0": proves the addon reached the library.
Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), rd_kafka_version_str()); }

// librdkafka's builtin.features (codecs, SSL, SASL mechanisms).
Napi::Value Features(const Napi::CallbackInfo& info) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char buf[1024];
  size_t size = sizeof(buf);
  rd_kafka_conf_res_t res = rd_kafka_conf_get(conf, "builtin.features", buf, &size);
  rd_kafka_conf_destroy(conf);
  if (res != RD_KAFKA_CONF_OK) throw Napi::Error::New(info.Env(), "builtin.features unavailable");
  return Napi::String::New(info.Env(), buf);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version, "version"));
  exports.Set("features", Napi::Function::New(env, Features, "features"));
  exports.Set("Forwarder", strait::Forwarder::Define(env));
  exports.Set("Admin", strait::Admin::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(strait_native, Init)
