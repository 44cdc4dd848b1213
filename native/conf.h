// Applying JavaScript client properties to a librdkafka conf, shared by the forwarder and the admin client.
#pragma once

#include <napi.h>
#include <librdkafka/rdkafka.h>

#include <string>

namespace strait {

// Sets every property of `props` (string | number | boolean values) on `conf`; throws a JavaScript error naming
// `<side>.<property>` with librdkafka's own words on the first one it refuses. The caller owns `conf` either way.
inline void ApplyProps(Napi::Env env, rd_kafka_conf_t* conf, const Napi::Object& props, const char* side) {
  Napi::Array keys = props.GetPropertyNames();
  char errstr[512];
  for (uint32_t i = 0; i < keys.Length(); i++) {
    std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value v = props.Get(key);
    std::string value = v.IsBoolean() ? (v.As<Napi::Boolean>().Value() ? "true" : "false") : v.ToString().Utf8Value();
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      throw Napi::Error::New(env, std::string(side) + "." + key + ": " + errstr);
    }
  }
}

}  // namespace strait
