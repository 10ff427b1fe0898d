// The gRPC edge under fuzzing: an in-process leadflow (embedded log, every view) receives calls
// to every RPC of leadflow.v1 (except AdminService.Backup, which writes to the server's disk;
// tests/e2e/backup_test.sh and services/server/backup_test.cc cover it) in two shapes:
//   - arbitrary bytes as the request (mostly not a message at all);
//   - hostile-but-valid messages: every field filled by reflection from the input with the
//     values that break services (control characters, bidirectional overrides, 100,000-byte
//     strings, int64 extremes, unknown enum numbers, timestamps out of range, ids of real leads,
//     repeated command ids).
// After every call it checks: the process is alive (ASan/UBSan abort otherwise); the status code
// is one docs/events.md and docs/views.md document for that kind of RPC; and the log grew by
// exactly the events the reply reports as written (nothing for a refusal, a replay or a query).
// A violation aborts with the method, the code and the message.
//
// Input layout: byte 0 picks the method, byte 1 the shape (0 raw bytes, 1 hostile message, 2-3
// a plausible message with a hostile value here and there), the rest feeds it.
#include <fuzzer/FuzzedDataProvider.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/server/node.h"
#include "tests/fuzz/quiet_protobuf.h"

namespace {

namespace pb = google::protobuf;

struct Method {
  std::string path;  // /leadflow.v1.Service/Method
  std::string service;
  const pb::MethodDescriptor* descriptor;
  bool command;  // LeadCommandService: may append
};

struct Edge {
  std::unique_ptr<leadflow::server::Node> node;
  std::unique_ptr<grpc::GenericStub> stub;
  std::vector<Method> methods;
  std::vector<std::string> lead_ids;      // from accepted commands, to aim at real leads
  std::vector<std::string> customer_ids;  // likewise
};

Edge* edge = nullptr;

// Codes seen, per kind of RPC, printed at exit: what the run reached.
std::map<std::string, int64_t>* seen = nullptr;

void PrintSeen() {
  if (seen == nullptr) return;
  std::fprintf(stderr, "edge_fuzz: codes seen:");
  for (const auto& [key, n] : *seen)
    std::fprintf(stderr, " %s=%lld", key.c_str(), static_cast<long long>(n));
  std::fprintf(stderr, "; leads known %zu\n", edge == nullptr ? 0 : edge->lead_ids.size());
}

void Die(const std::string& what) {
  std::fprintf(stderr, "edge_fuzz: %s\n", what.c_str());
  std::abort();
}

void StartEdge() {
  edge = new Edge();
  seen = new std::map<std::string, int64_t>();
  std::atexit(PrintSeen);
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "leadflow-edge-fuzz-XXXXXX").string();
  const char* dir = mkdtemp(tmpl.data());
  if (dir == nullptr) Die("mkdtemp failed");
  leadflow::server::NodeOptions o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.partitions = 2;
  o.sync = false;  // durability is not under test here; speed is
  o.id_key = "edge-fuzz-key";
  o.phone_region = "GB";
  auto node = leadflow::server::Node::Start(o);
  if (!node.ok()) Die(std::string("cannot start: ") + std::string(node.status().message()));
  edge->node = std::move(*node);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", edge->node->port()),
                                           grpc::InsecureChannelCredentials(), args);
  edge->stub = std::make_unique<grpc::GenericStub>(channel);
  const pb::FileDescriptor* file =
      pb::DescriptorPool::generated_pool()->FindFileByName("leadflow/v1/lead_service.proto");
  if (file == nullptr) Die("lead_service.proto not linked");
  for (int s = 0; s < file->service_count(); ++s) {
    const pb::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      const pb::MethodDescriptor* method = service->method(m);
      if (service->name() == "AdminService") continue;  // writes to the server's disk
      edge->methods.push_back({absl::StrCat("/", service->full_name(), "/", method->name()),
                               service->name(), method, service->name() == "LeadCommandService"});
    }
  }
}

// Values that break services.
const std::vector<std::string>& HostileStrings() {
  static const auto* strings = new std::vector<std::string>{
      "",
      " ",
      "ada@example.com",
      "ADA@Example.COM",
      "not-an-email",
      "a@b",
      "+44 20 7946 0958",
      "+1 2 3 4 5 6 7 8",
      "0044 20 7946 0958",
      "alice",
      "bob",
      std::string("nul\0inside", 10),
      "tab\there",
      "line\nbreak",
      "\x7f"
      "del",
      "\xc2\x85"
      "nel",  // U+0085 (C1)
      "\xe2\x80\xae"
      "override",  // U+202E
      "\xe2\x81\xa6"
      "isolate",           // U+2066
      "\xf0\x9f\x98\x80",  // an emoji
      "ld_0000000000000000000",
      "ld_",
      "cu_123",
      "EUR",
      "XXX",
      "eur",
      "2026-01-01T00:00:00Z",
      "%s%n%x",
      "../../etc/passwd",
      "'; DROP TABLE leads; --",
      std::string(300, 'n'),
      std::string(5000, 'x'),
      std::string(100000, 'e'),
  };
  return *strings;
}

int64_t HostileInt(FuzzedDataProvider& in) {
  static const int64_t values[] = {0,
                                   1,
                                   -1,
                                   2,
                                   7,
                                   1000,
                                   1000000,
                                   5000000000,
                                   1000000000000000,  // the money bound (10^15 micros)
                                   1000000000000001,
                                   INT64_MAX,
                                   INT64_MIN,
                                   INT32_MAX,
                                   INT32_MIN,
                                   1767225600,     // 2026-01-01
                                   253402300800,   // year 10000
                                   -62135596801};  // before year 1
  if (in.ConsumeBool()) return in.ConsumeIntegral<int64_t>();
  return values[in.ConsumeIntegralInRange<size_t>(0, std::size(values) - 1)];
}

std::string HostileString(FuzzedDataProvider& in, const pb::FieldDescriptor* field) {
  const std::string& name = field->name();
  const int pick = in.ConsumeIntegralInRange(0, 9);
  if (pick < 3 &&
      (name == "lead_id" || name == "survivor_id" || name == "duplicate_id" ||
       name == "into_lead_id") &&
      !edge->lead_ids.empty()) {
    return edge->lead_ids[in.ConsumeIntegralInRange<size_t>(0, edge->lead_ids.size() - 1)];
  }
  if (pick < 3 && name == "customer_id" && !edge->customer_ids.empty()) {
    return edge->customer_ids[in.ConsumeIntegralInRange<size_t>(0, edge->customer_ids.size() - 1)];
  }
  if (name == "command_id" && pick < 6)
    return absl::StrCat("cmd-", in.ConsumeIntegralInRange(0, 7));
  if (pick < 7) {
    const auto& all = HostileStrings();
    return all[in.ConsumeIntegralInRange<size_t>(0, all.size() - 1)];
  }
  // Valid UTF-8 only (proto3 strings); arbitrary bytes go through the raw shape.
  std::string s = in.ConsumeRandomLengthString(64);
  std::string out;
  for (unsigned char c : s) out.push_back(static_cast<char>(c & 0x7f));
  return out;
}

void Fill(pb::Message* m, FuzzedDataProvider& in, int depth);

// A value a well-behaved client would send for the field (by its name), so whole commands pass
// validation and reach the lifecycle rules, the contact registry and the views.
bool plausible = false;

std::string PlausibleString(FuzzedDataProvider& in, const pb::FieldDescriptor* f) {
  const std::string& name = f->name();
  const int k = in.ConsumeIntegralInRange(0, 40);
  if (name.find("email") != std::string::npos) return absl::StrCat("p", k, "@example.com");
  if (name.find("phone") != std::string::npos) return absl::StrCat("+44 20 7946 0", 100 + k);
  if (name.find("lead_id") != std::string::npos || name == "survivor_id" ||
      name == "duplicate_id") {
    if (!edge->lead_ids.empty()) {
      return edge->lead_ids[in.ConsumeIntegralInRange<size_t>(0, edge->lead_ids.size() - 1)];
    }
  }
  if (name == "customer_id" && !edge->customer_ids.empty()) {
    return edge->customer_ids[in.ConsumeIntegralInRange<size_t>(0, edge->customer_ids.size() - 1)];
  }
  if (name == "currency_code") return k % 5 == 0 ? "USD" : "EUR";
  if (name == "command_id") return absl::StrCat("cmd-", in.ConsumeIntegralInRange(0, 400));
  if (name == "id" || name == "owner" || name.find("owner") != std::string::npos) {
    return k % 2 ? "alice" : "bob";
  }
  if (name.find("name") != std::string::npos) return absl::StrCat("Person ", k);
  if (name == "page_token") return "";
  return absl::StrCat("text ", k);
}

int64_t PlausibleInt(FuzzedDataProvider& in, const pb::FieldDescriptor* f) {
  const std::string& name = f->name();
  if (name.find("micros") != std::string::npos) return in.ConsumeIntegralInRange(1, 50) * 1000000;
  if (name == "page_size" || name == "limit") return in.ConsumeIntegralInRange(1, 50);
  if (name.find("days") != std::string::npos) return in.ConsumeIntegralInRange(1, 400);
  if (name == "score" || name == "nps") return in.ConsumeIntegralInRange(0, 10);
  return in.ConsumeIntegralInRange(0, 3);
}

void FillField(pb::Message* m, const pb::FieldDescriptor* f, FuzzedDataProvider& in, int depth) {
  const pb::Reflection* r = m->GetReflection();
  const bool repeated = f->is_repeated();
  const int count = repeated ? in.ConsumeIntegralInRange(0, 3) : 1;
  for (int i = 0; i < count; ++i) {
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string v = plausible ? PlausibleString(in, f) : HostileString(in, f);
        repeated ? r->AddString(m, f, std::move(v)) : r->SetString(m, f, std::move(v));
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        const int64_t v = plausible ? PlausibleInt(in, f) : HostileInt(in);
        repeated ? r->AddInt64(m, f, v) : r->SetInt64(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        const auto v = static_cast<uint64_t>(HostileInt(in));
        repeated ? r->AddUInt64(m, f, v) : r->SetUInt64(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        const auto v = static_cast<int32_t>(plausible ? PlausibleInt(in, f) : HostileInt(in));
        repeated ? r->AddInt32(m, f, v) : r->SetInt32(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        const auto v = static_cast<uint32_t>(HostileInt(in));
        repeated ? r->AddUInt32(m, f, v) : r->SetUInt32(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        const bool v = in.ConsumeBool();
        repeated ? r->AddBool(m, f, v) : r->SetBool(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        static const double values[] = {0.0,
                                        0.5,
                                        1.0,
                                        -1.0,
                                        1e300,
                                        -1e300,
                                        std::numeric_limits<double>::quiet_NaN(),
                                        std::numeric_limits<double>::infinity()};
        const double v = values[in.ConsumeIntegralInRange<size_t>(0, std::size(values) - 1)];
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE) {
          repeated ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
        } else {
          repeated ? r->AddFloat(m, f, static_cast<float>(v))
                   : r->SetFloat(m, f, static_cast<float>(v));
        }
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumDescriptor* e = f->enum_type();
        int v = plausible || in.ConsumeBool()
                    ? e->value(in.ConsumeIntegralInRange(plausible && e->value_count() > 1 ? 1 : 0,
                                                         e->value_count() - 1))
                          ->number()
                    : static_cast<int>(HostileInt(in) % 1000);
        repeated ? r->AddEnumValue(m, f, v) : r->SetEnumValue(m, f, v);
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE: {
        if (depth >= 4) break;
        pb::Message* sub = repeated ? r->AddMessage(m, f) : r->MutableMessage(m, f);
        if (f->message_type()->full_name() == "google.protobuf.Timestamp") {
          auto* ts = static_cast<pb::Timestamp*>(sub);
          // Mostly near "now" (so time rules pass), sometimes anything.
          const bool near = plausible || in.ConsumeBool();
          // Plausible: about now (a second's jitter either way), so time rules pass.
          ts->set_seconds(near ? time(nullptr) - in.ConsumeIntegralInRange(-1, 1) : HostileInt(in));
          ts->set_nanos(near ? 0 : static_cast<int32_t>(HostileInt(in)));
        } else {
          Fill(sub, in, depth + 1);
        }
        break;
      }
    }
  }
}

void Fill(pb::Message* m, FuzzedDataProvider& in, int depth) {
  const pb::Descriptor* d = m->GetDescriptor();
  // Oneofs: one member (the later one set wins anyway): a plausible message picks it first.
  std::set<const pb::OneofDescriptor*> chosen;
  for (int i = 0; i < d->field_count() && (plausible || in.remaining_bytes() > 0); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    // (An exhausted input yields the minimum of every range: "set it, keep it plausible".)
    if (const pb::OneofDescriptor* o = f->real_containing_oneof(); o != nullptr && plausible) {
      if (chosen.count(o) > 0) continue;
      if (f != o->field(in.ConsumeIntegralInRange(0, o->field_count() - 1))) continue;
      chosen.insert(o);
    } else if (in.ConsumeIntegralInRange(0, plausible ? 15 : 3) == (plausible ? 15 : 0)) {
      continue;
    } else if (plausible && f->name() == "expected_version" &&
               in.ConsumeIntegralInRange(0, 3) > 0) {
      continue;  // well-behaved clients mostly do not pin a version
    }
    // A plausible message carries one or two hostile values.
    const bool was = plausible;
    if (plausible && in.ConsumeIntegralInRange(0, 15) == 15) plausible = false;
    FillField(m, f, in, depth);
    plausible = was;
  }
}

// What kind of RPC may answer what (docs/events.md "Errors a client sees", docs/views.md
// "Errors"). Nothing here is damaged or out of room, so DATA_LOSS, UNKNOWN, INTERNAL,
// UNIMPLEMENTED and RESOURCE_EXHAUSTED are bugs.
bool Documented(const Method& m, grpc::StatusCode code) {
  using C = grpc::StatusCode;
  switch (code) {
    case C::OK:
    case C::INVALID_ARGUMENT:
    case C::NOT_FOUND:
    case C::FAILED_PRECONDITION:
    case C::OUT_OF_RANGE:  // a position past the log's end; a total too large to represent
      return true;
    case C::ABORTED:         // version conflict; a capture racing another for its contact
    case C::ALREADY_EXISTS:  // a command id reused; a contact held by another lead
      return m.command;
    case C::UNAVAILABLE:  // a read waiting for a position the view has not reached in time
      return !m.command;
    default:
      return false;
  }
}

// Events the reply says were written (CommandReply, or every accepted CommandResult of a batch).
int64_t Written(const Method& m, const grpc::ByteBuffer& response) {
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return -1;
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  auto count = [](const leadflow::v1::CommandReply& r) -> int64_t {
    if (!r.lead_id().empty()) edge->lead_ids.push_back(r.lead_id());
    if (!r.customer_id().empty()) edge->customer_ids.push_back(r.customer_id());
    if (edge->lead_ids.size() > 64) edge->lead_ids.erase(edge->lead_ids.begin());
    if (edge->customer_ids.size() > 64) edge->customer_ids.erase(edge->customer_ids.begin());
    return r.replayed() ? 0 : r.event_ids_size();
  };
  if (m.descriptor->output_type()->full_name() == "leadflow.v1.CommandBatchReply") {
    leadflow::v1::CommandBatchReply reply;
    if (!reply.ParseFromString(bytes)) return -1;
    int64_t n = 0;
    for (const auto& result : reply.results()) {
      if (result.code() == 0) n += count(result.reply());
    }
    return n;
  }
  leadflow::v1::CommandReply reply;
  if (!reply.ParseFromString(bytes)) return -1;
  return count(reply);
}

int64_t Sum(const std::vector<int64_t>& v) {
  int64_t n = 0;
  for (int64_t x : v) n += x;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (edge == nullptr) StartEdge();
  if (size < 2) return 0;
  const Method& m = edge->methods[data[0] % edge->methods.size()];
  const bool raw = data[1] % 4 == 0;
  plausible = data[1] % 4 >= 2;
  FuzzedDataProvider in(data + 2, size - 2);
  std::string request;
  if (raw) {
    request = in.ConsumeRemainingBytesAsString();
  } else {
    std::unique_ptr<pb::Message> message(
        pb::MessageFactory::generated_factory()->GetPrototype(m.descriptor->input_type())->New());
    Fill(message.get(), in, 0);
    request = message->SerializeAsString();
  }
  const std::vector<int64_t> before = edge->node->LogEnds();

  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::promise<grpc::Status> done;
  edge->stub->UnaryCall(&context, m.path, grpc::StubOptions(), &send, &response,
                        [&done](grpc::Status s) { done.set_value(std::move(s)); });
  const grpc::Status status = done.get_future().get();
  if (std::getenv("EDGE_FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "edge_fuzz: %s %s -> %d %s\n", m.path.c_str(),
                 raw         ? "raw"
                 : plausible ? "plausible"
                             : "hostile",
                 status.error_code(), status.error_message().substr(0, 160).c_str());
  }
  ++(*seen)[absl::StrCat(
      m.command ? "command:" : "query:",
      absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())))];

  if (!Documented(m, status.error_code())) {
    Die(absl::StrCat(m.path, " (", raw ? "raw bytes" : "message", "): undocumented code ",
                     status.error_code(), ": ", status.error_message().substr(0, 300)));
  }
  if (!status.ok() && status.error_message().empty()) {
    Die(absl::StrCat(m.path, ": code ", status.error_code(), " without a message"));
  }
  // The writer acknowledges after its sync; the log's end is then already there.
  const std::vector<int64_t> after = edge->node->LogEnds();
  const int64_t appended = Sum(after) - Sum(before);
  if (!m.command) {
    if (appended != 0) Die(absl::StrCat(m.path, ": a query appended ", appended, " events"));
  } else if (!status.ok()) {
    if (appended != 0) {
      Die(absl::StrCat(m.path, ": refused (code ", status.error_code(), ") but appended ", appended,
                       " events: ", status.error_message().substr(0, 200)));
    }
  } else {
    const int64_t written = Written(m, response);
    if (written != appended) {
      Die(absl::StrCat(m.path, ": the reply reports ", written, " events written, the log grew by ",
                       appended));
    }
  }
  return 0;
}
