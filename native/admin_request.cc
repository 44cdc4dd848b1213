#include "admin_request.h"

#include <algorithm>
#include <cmath>

namespace strait {

namespace {

// How much longer than its caller librdkafka keeps a consumer group request alive (see HandleSlot): the handle of an
// abandoned request is destroyed within milliseconds of the caller's timeout, long before this runs out.
constexpr int kAbandonMarginMs = 60000;
constexpr int kMaxRequestTimeoutMs = 3600000;
// how much longer than its own timeout a request that librdkafka answers is waited for
constexpr int kAnswerMarginMs = 2000;

}  // namespace

AdminRequest::AdminRequest(Napi::Env env, AdminTarget target, const char* name, rd_kafka_admin_op_t op, int timeout_ms, Abandon abandon)
    : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), target_(std::move(target)), name_(name), op_(op),
      timeout_ms_(timeout_ms), abandon_(abandon) {}

void AdminRequest::Execute() {
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk());
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk(), op_);
  char errstr[256];
  const bool retire = abandon_ == Abandon::kRetireHandle;
  const int librdkafka_timeout = retire ? std::min(kMaxRequestTimeoutMs, timeout_ms_ + kAbandonMarginMs) : timeout_ms_;
  if (rd_kafka_AdminOptions_set_request_timeout(opts, librdkafka_timeout, errstr, sizeof(errstr)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Fail("_INVALID_ARG", std::string("_INVALID_ARG: timeoutMs: ") + errstr);
  } else if (Start(opts, q)) {
    rd_kafka_event_t* ev = rd_kafka_queue_poll(q, retire ? timeout_ms_ : timeout_ms_ + kAnswerMarginMs);
    if (ev == nullptr) {
      // abandoned while librdkafka may still hold it: a group request's handle must go before it could be sent late
      if (retire) target_.slot->Retire(target_.rk);
      Fail("_TIMED_OUT", "_TIMED_OUT: no result within " + std::to_string(timeout_ms_) + " ms (no broker" +
                             (retire ? ", or not the group's coordinator," : "") + " answered)");
    } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      Fail(rd_kafka_err2name(rd_kafka_event_error(ev)), std::string(rd_kafka_err2name(rd_kafka_event_error(ev))) + ": " + rd_kafka_event_error_string(ev));
    } else {
      Collect(ev);
    }
    if (ev != nullptr) rd_kafka_event_destroy(ev);
  }
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  Finish();
}

void AdminRequest::OnError(const Napi::Error& e) {
  Napi::Object err = e.Value();
  if (!code_.empty()) err.Set("kafkaCode", Napi::String::New(Env(), code_));
  deferred_.Reject(err);
}

void AdminRequest::Fail(const std::string& code, const std::string& why) {
  code_ = code;
  SetError(std::string(name_) + ": " + why);
}

std::string ErrorText(const rd_kafka_error_t* e) { return std::string(rd_kafka_error_name(e)) + ": " + rd_kafka_error_string(e); }

std::string ErrorText(rd_kafka_resp_err_t err) { return std::string(rd_kafka_err2name(err)) + ": " + rd_kafka_err2str(err); }

std::string Describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsString()) return "\"" + v.As<Napi::String>().Utf8Value() + "\"";
  if (v.IsNumber() || v.IsBoolean()) return v.ToString().Utf8Value();
  if (v.IsArray()) return "an array";
  return "an object";
}

int TimeoutArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return 10000;
  // librdkafka's request.timeout.ms range for admin requests
  double d = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 1 && d <= kMaxRequestTimeoutMs && std::floor(d) == d)) {
    throw BadArgument{"timeoutMs must be an integer from 1 to 3600000 (got " + Describe(info[i]) + ")"};
  }
  return static_cast<int>(d);
}

std::string StringArg(const Napi::Value& v, const std::string& field) {
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty()) {
    throw BadArgument{field + " must be a non-empty string (got " + Describe(v) + ")"};
  }
  return v.As<Napi::String>().Utf8Value();
}

std::vector<std::string> StringsArg(const Napi::Value& v, const std::string& field, const char* noun) {
  if (!v.IsArray()) throw BadArgument{field + " must be an array of " + noun + " (got " + Describe(v) + ")"};
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(StringArg(arr.Get(i), field + "[" + std::to_string(i) + "]"));
  if (out.empty()) throw BadArgument{field + " is empty"};
  return out;
}

namespace {

int64_t IntegerField(const Napi::Object& o, const char* key, const std::string& path, double max) {
  Napi::Value v = o.Get(key);
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= max && std::floor(d) == d)) {
    throw BadArgument{path + "." + key + " must be an integer >= 0 (got " + Describe(v) + ")"};
  }
  return static_cast<int64_t>(d);
}

}  // namespace

std::vector<TopicPartitionIn> PartitionsArg(const Napi::Value& v, const std::string& field, bool with_offset) {
  if (!v.IsArray()) throw BadArgument{field + " must be an array (got " + Describe(v) + ")"};
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<TopicPartitionIn> out;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    std::string path = field + "[" + std::to_string(i) + "]";
    Napi::Value e = arr.Get(i);
    if (!e.IsObject() || e.IsArray()) throw BadArgument{path + " must be an object (got " + Describe(e) + ")"};
    Napi::Object o = e.As<Napi::Object>();
    TopicPartitionIn p;
    p.topic = StringArg(o.Get("topic"), path + ".topic");
    p.partition = static_cast<int32_t>(IntegerField(o, "partition", path, 2147483647.0));
    if (with_offset) {
      p.offset = IntegerField(o, "offset", path, 9007199254740991.0);
      Napi::Value m = o.Get("metadata");
      if (!m.IsUndefined() && !m.IsNull()) {
        if (!m.IsString()) throw BadArgument{path + ".metadata must be a string (got " + Describe(m) + ")"};
        p.has_metadata = true;
        p.metadata = m.As<Napi::String>().Utf8Value();
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace strait
