// leadctl: the command-line client of leadflow, for people (tables, plain sentences) and for
// scripts (--json, exit codes). Every lead and customer command, and lead look-ups.
//
// Exit codes: 0 ok; 1 refused by the server (the message says why); 2 bad usage or input;
// 3 server unreachable or timed out (safe to retry with the same --id).
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <fstream>
#include <functional>
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/random/random.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/struct.pb.h"
#include "google/rpc/status.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "leadflow/v1/stream.grpc.pb.h"
#include "services/common/commands.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "services/common/time_util.h"
#include "tools/leadctl/parse.h"
#include "tools/leadctl/report.h"

namespace leadflow::leadctl {
namespace {

constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;

struct Global {
  std::string server;
  bool json = false;
  bool csv = false;
  std::string actor;
  int timeout_seconds = 30;
  // Credentials: the bearer token sent with every call (empty: none) and TLS files.
  std::string token, token_file, data_dir;
  std::string ca, cert, key;
  bool tls = false;
};

// The bearer token: --token, $LEADFLOW_TOKEN, --token-file / $LEADFLOW_TOKEN_FILE, else the
// local admin token `leadflow serve` wrote under --data-dir (default ./leadflow-data). Empty if
// none is found (an authenticating server then answers UNAUTHENTICATED).
absl::StatusOr<std::string> FindToken(const Global& g) {
  if (!g.token.empty()) return g.token;
  if (const char* t = std::getenv("LEADFLOW_TOKEN"); t != nullptr && *t != '\0')
    return std::string(t);
  std::string file = g.token_file;
  if (file.empty()) {
    if (const char* f = std::getenv("LEADFLOW_TOKEN_FILE"); f != nullptr) file = f;
  }
  const bool explicit_file = !file.empty();
  if (file.empty()) file = (std::filesystem::path(g.data_dir) / "auth" / "admin.token").string();
  std::ifstream in(file);
  if (!in) {
    if (explicit_file)
      return absl::InvalidArgumentError(absl::StrCat("--token-file: cannot read ", file));
    return std::string();
  }
  std::string token;
  std::getline(in, token);
  return std::string(absl::StripAsciiWhitespace(token));
}

// Adds the caller's token to a call.
void Authorize(grpc::ClientContext& ctx, const Global& g) {
  if (!g.token.empty()) ctx.AddMetadata("authorization", "Bearer " + g.token);
}

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Plaintext, or TLS when --tls or --ca is given (with --cert/--key: a client certificate).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const Global& g) {
  if (!g.tls && g.ca.empty() && g.cert.empty()) return grpc::InsecureChannelCredentials();
  if (g.cert.empty() != g.key.empty()) {
    return absl::InvalidArgumentError("--cert and --key: give both (a client certificate)");
  }
  grpc::SslCredentialsOptions o;
  if (!g.ca.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("--ca", g.ca);
    if (!ca.ok()) return ca.status();
    o.pem_root_certs = *ca;
  }
  if (!g.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("--cert", g.cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("--key", g.key);
    if (!key.ok()) return key.status();
    o.pem_cert_chain = *cert;
    o.pem_private_key = *key;
  }
  return grpc::SslCredentials(o);
}

// Flags every command shares.
struct MetaFlags {
  std::string id;
  std::string at;
  std::string correlation;
  int64_t expect_version = -1;
};

std::string NewCommandId() {
  absl::BitGen gen;
  return absl::StrCat("leadctl-", absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

void AddMetaFlags(CLI::App* cmd, MetaFlags* m) {
  cmd->add_option("--id", m->id,
                  "Command id; retrying with the same id never applies the command twice "
                  "(default: a fresh random id)");
  cmd->add_option("--at", m->at, "When it happened (RFC 3339 or YYYY-MM-DD; default: now)");
  cmd->add_option("--correlation-id", m->correlation, "Groups related commands");
  cmd->add_option("--expect-version", m->expect_version,
                  "Refuse (ABORTED) unless the lead/customer is at this version");
}

absl::StatusOr<v1::CommandMeta> BuildMeta(const MetaFlags& m, const Global& g) {
  v1::CommandMeta meta;
  meta.set_command_id(m.id.empty() ? NewCommandId() : m.id);
  if (!g.actor.empty()) {
    meta.mutable_actor()->set_kind(v1::Actor::KIND_USER);
    meta.mutable_actor()->set_id(g.actor);
  }
  meta.set_correlation_id(m.correlation);
  if (!m.at.empty()) {
    auto ts = ParseTime("--at", m.at);
    if (!ts.ok()) return ts.status();
    *meta.mutable_occurred_at() = *ts;
  }
  if (m.expect_version >= 0) meta.set_expected_version(m.expect_version);
  return meta;
}

template <typename E>
absl::Status SetEnum(const std::string& flag, const std::string& text,
                     const google::protobuf::EnumDescriptor* d, E* out) {
  if (text.empty()) return absl::OkStatus();
  auto v = ParseEnum(flag, d, text);
  if (!v.ok()) return v.status();
  *out = static_cast<E>(*v);
  return absl::OkStatus();
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

void PrintReply(const std::string& command, const v1::CommandReply& r) {
  const v1::LogPosition& pos = r.last_position();
  if (r.replayed()) {
    std::cout << "ok (retry): this command id was already applied; nothing new was written\n";
  } else if (r.deduplicated()) {
    std::cout << "ok: known contact - recorded as an inquiry on lead " << r.lead_id() << "\n";
  } else {
    std::cout << "ok: " << command << " on lead " << r.lead_id() << "\n";
  }
  std::cout << "    lead version   " << r.lead_version() << "\n";
  if (!r.customer_id().empty()) {
    std::cout << "    customer       " << r.customer_id() << " (version " << r.customer_version()
              << ")\n";
  }
  if (!r.notify_owner().empty()) std::cout << "    tell the owner " << r.notify_owner() << "\n";
  if (!r.merged_into().empty()) {
    std::cout << "    note           this lead was merged into " << r.merged_into()
              << "; follow up there\n";
  }
  if (r.event_ids_size() == 0 && !r.replayed()) {
    std::cout << "    nothing written (already so: an erased lead stays erased)\n";
    return;
  }
  std::cout << "    logged at      partition " << pos.partition() << ", offset " << pos.offset()
            << " (" << r.event_ids_size() << " event" << (r.event_ids_size() == 1 ? "" : "s")
            << ")\n";
}

std::string Short(const google::protobuf::EnumDescriptor* d, int v) { return EnumShortName(d, v); }

std::string DateTime(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M", common::FromProto(ts), absl::UTCTimeZone());
}

void Row(const std::string& k, const std::string& v) {
  std::cout << "  " << k << std::string(k.size() < 16 ? 16 - k.size() : 1, ' ') << v << "\n";
}

void PrintLead(const v1::LeadView& l) {
  std::cout << "Lead " << l.lead_id() << "  "
            << absl::AsciiStrToUpper(Short(v1::LeadStatus_descriptor(), l.status()))
            << "  (version " << l.version() << ")"
            << (l.erased() ? "  ERASED: personal data destroyed" : "") << "\n";
  Row("person", OrDash(l.person().full_name()));
  Row("company", OrDash(l.company()));
  Row("title", OrDash(l.title()));
  Row("email", OrDash(l.email()));
  Row("phone", OrDash(l.phone()));
  Row("source", absl::StrCat(Short(v1::SourceChannel_descriptor(), l.source_channel()), " (",
                             Short(v1::OriginType_descriptor(), l.origin_type()), ")",
                             l.campaign().empty() ? "" : ", campaign ", l.campaign()));
  if (l.has_acquisition_cost()) Row("acquisition", FormatMoney(l.acquisition_cost()));
  Row("temperature",
      absl::StrCat(Short(v1::Temperature_descriptor(), l.temperature()), " (at capture: ",
                   Short(v1::Temperature_descriptor(), l.temperature_at_capture()), ")"));
  Row("owner", l.owner().empty()
                   ? "- (unassigned)"
                   : absl::StrCat(l.owner(), l.team().empty() ? "" : " / ", l.team()));
  if (l.status() == v1::LEAD_STATUS_QUALIFIED) {
    Row("stage", Short(v1::SalesStage_descriptor(), l.stage()));
  }
  if (l.has_bant()) {
    Row("BANT", absl::StrCat("budget ", FormatMoney(l.bant().budget()),
                             "; decides: ", l.bant().decision_maker(), "; need: ", l.bant().need(),
                             "; decision by ", DateTime(l.bant().expected_decision_at())));
  }
  std::string touches = absl::StrCat(l.touches_total());
  for (const auto& t : l.touches()) {
    absl::StrAppend(&touches, touches.find('(') == std::string::npos ? " (" : ", ",
                    Short(v1::InteractionKind_descriptor(), t.kind()), " ", t.outbound(), " out/",
                    t.inbound(), " in");
  }
  if (l.touches_size() > 0) touches += ")";
  Row("touches", touches);
  if (l.has_last_interaction_at()) {
    Row("last touch",
        absl::StrCat(DateTime(l.last_interaction_at()), " (",
                     Short(v1::InteractionKind_descriptor(), l.last_interaction_kind()), ")"));
  }
  Row("last activity", DateTime(l.last_activity_at()));
  const v1::Milestones& m = l.milestones();
  Row("milestones",
      absl::StrCat("captured ", DateTime(m.captured()), " | contacted ", DateTime(m.contacted()),
                   " | qualified ", DateTime(m.qualified())));
  Row("", absl::StrCat("presented ", DateTime(m.presented()), " | proposal ",
                       DateTime(m.proposal()), " | converted ", DateTime(m.converted())));
  Row("status since", DateTime(l.status_changed_at()));
  if (l.status() == v1::LEAD_STATUS_REJECTED) {
    Row("rejected", absl::StrCat(Short(v1::RejectionReason_descriptor(), l.rejection_reason()),
                                 l.exit_text().empty() ? "" : ": ", l.exit_text()));
  }
  if (l.status() == v1::LEAD_STATUS_DISQUALIFIED) {
    Row("disqualified",
        absl::StrCat(Short(v1::DisqualificationReason_descriptor(), l.disqualification_reason()),
                     l.exit_text().empty() ? "" : ": ", l.exit_text()));
  }
  if (l.has_revisit_at()) {
    Row("revisit at", absl::StrCat(DateTime(l.revisit_at()), l.exit_text().empty() ? "" : " (",
                                   l.exit_text(), l.exit_text().empty() ? "" : ")"));
  }
  for (const auto& f : l.open_follow_ups()) {
    Row("follow-up", absl::StrCat(f.follow_up_id(), " due ", DateTime(f.due_at()), " (",
                                  Short(v1::InteractionKind_descriptor(), f.kind()), ")",
                                  f.note().empty() ? "" : ": ", f.note()));
  }
  if (l.inquiries() > 0) Row("inquiries", absl::StrCat(l.inquiries(), " (came back)"));
  if (!l.customer_id().empty()) Row("customer", l.customer_id());
  if (!l.merged_into().empty()) Row("merged into", l.merged_into());
  Row("as of", absl::StrCat("partition ", l.last_position().partition(), ", offset ",
                            l.last_position().offset()));
}

std::string Cell(const std::string& s, size_t width) {
  std::string out = s.size() > width ? s.substr(0, width - 1) + "~" : s;
  return out + std::string(width + 1 - out.size(), ' ');
}

void PrintLeadTable(const v1::ListLeadsResponse& r) {
  std::cout << Cell("LEAD", 23) << Cell("STATUS", 12) << Cell("NAME", 22) << Cell("OWNER", 10)
            << Cell("SOURCE", 16) << Cell("TEMP", 5) << Cell("CAPTURED", 16) << "LAST ACTIVITY\n";
  for (const auto& l : r.leads()) {
    std::cout << Cell(l.lead_id(), 23)
              << Cell(absl::AsciiStrToUpper(Short(v1::LeadStatus_descriptor(), l.status())), 12)
              << Cell(l.person().full_name(), 22) << Cell(OrDash(l.owner()), 10)
              << Cell(Short(v1::SourceChannel_descriptor(), l.source_channel()), 16)
              << Cell(Short(v1::Temperature_descriptor(), l.temperature()), 5)
              << Cell(DateTime(l.milestones().captured()), 16) << DateTime(l.last_activity_at())
              << "\n";
  }
  std::cout << "(" << r.leads_size() << " lead" << (r.leads_size() == 1 ? "" : "s");
  if (!r.next_page_token().empty()) std::cout << "; more: --page-token " << r.next_page_token();
  std::cout << ")\n";
}

std::string Summarize(const v1::Event& e) {
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured:
      return absl::StrCat("captured from ", Short(v1::SourceChannel_descriptor(),
                                                  e.lead_captured().source_channel()));
    case v1::Event::kInquiryReceived:
      return absl::StrCat(
          "came back (",
          Short(v1::SourceChannel_descriptor(), e.inquiry_received().source_channel()), ")");
    case v1::Event::kLeadAssigned:
      return absl::StrCat("assigned to ", e.lead_assigned().owner());
    case v1::Event::kInteractionLogged:
      return absl::StrCat(Short(v1::InteractionKind_descriptor(), e.interaction_logged().kind()),
                          " ",
                          Short(v1::Direction_descriptor(), e.interaction_logged().direction()),
                          ", ", Short(v1::Outcome_descriptor(), e.interaction_logged().outcome()));
    case v1::Event::kLeadQualified:
      return absl::StrCat("qualified, budget ", FormatMoney(e.lead_qualified().budget()));
    case v1::Event::kStageChanged:
      return absl::StrCat("stage ", Short(v1::SalesStage_descriptor(), e.stage_changed().stage()));
    case v1::Event::kLeadRejected:
      return absl::StrCat("rejected: ",
                          Short(v1::RejectionReason_descriptor(), e.lead_rejected().reason()));
    case v1::Event::kLeadPostponed:
      return absl::StrCat("postponed until ", DateTime(e.lead_postponed().revisit_at()));
    case v1::Event::kLeadReactivated:
      return absl::StrCat("reactivated to ", Short(v1::LeadStatus_descriptor(),
                                                   e.lead_reactivated().restored_status()));
    case v1::Event::kLeadConverted:
      return absl::StrCat("converted, deal ", FormatMoney(e.lead_converted().deal_value()));
    case v1::Event::kPurchaseRecorded:
      return absl::StrCat(Short(v1::PurchaseKind_descriptor(), e.purchase_recorded().kind()),
                          " purchase ", FormatMoney(e.purchase_recorded().amount()));
    case v1::Event::kNpsRecorded:
      return absl::StrCat("NPS ", e.nps_recorded().score());
    case v1::Event::kFollowUpScheduled:
      return absl::StrCat("follow-up ", e.follow_up_scheduled().follow_up_id(), " due ",
                          DateTime(e.follow_up_scheduled().due_at()));
    case v1::Event::kFollowUpCompleted:
      return absl::StrCat("follow-up ", e.follow_up_completed().follow_up_id(), " done");
    case v1::Event::kTemperatureSet:
      return absl::StrCat("temperature ",
                          Short(v1::Temperature_descriptor(), e.temperature_set().temperature()));
    case v1::Event::kContactDetailsUpdated:
      return "contact details updated";
    case v1::Event::kLeadDisqualified:
      return absl::StrCat("disqualified: ", Short(v1::DisqualificationReason_descriptor(),
                                                  e.lead_disqualified().reason()));
    case v1::Event::kLeadMerged:
      return absl::StrCat("merged into ", e.lead_merged().survivor_lead_id());
    case v1::Event::kCustomerCreated:
      return absl::StrCat("customer ", e.aggregate_id(), " created");
    case v1::Event::kCustomerProfileUpdated:
      return "profile updated";
    default: {
      const auto* f = v1::Event::descriptor()->FindFieldByNumber(e.payload_case());
      return f != nullptr ? f->name() : "event";
    }
  }
}

int Fail(const grpc::Status& st, const Global& g) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int code = static_cast<int>(st.error_code());
  const std::string name = code >= 0 && code <= 16 ? kNames[code] : absl::StrCat(code);
  if (g.json) {
    std::cout << "{\n  \"error\": {\"code\": \"" << name << "\", \"message\": " << Json([&] {
      google::protobuf::Value v;
      v.set_string_value(st.error_message());
      return v;
    }()) << "}\n}\n";
  }
  std::cerr << "leadctl: " << name << ": " << st.error_message() << "\n";
  google::rpc::Status rich;
  if (!st.error_details().empty() && rich.ParseFromString(st.error_details())) {
    for (const auto& detail : rich.details()) {
      v1::VersionConflict conflict;
      if (detail.UnpackTo(&conflict)) {
        std::cerr << "leadctl: " << conflict.aggregate_id() << " is at version "
                  << conflict.current_version() << "; look at it again (leadctl get) and retry "
                  << "with --expect-version " << conflict.current_version() << "\n";
      }
    }
  }
  if (st.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    std::cerr << "leadctl: give a token: --token, $LEADFLOW_TOKEN or --token-file (`leadflow "
                 "token issue --role R --subject S` makes one; on the server's machine leadctl "
                 "uses <data-dir>/auth/admin.token by itself, see --data-dir)\n";
  }
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE ||
      st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    // gRPC's own connection failures vs. a server that answered "not now".
    const std::string& m = st.error_message();
    const bool unreachable = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                             m.find("failed to connect") != std::string::npos ||
                             m.find("Socket closed") != std::string::npos ||
                             m.find("Connection reset") != std::string::npos;
    if (unreachable) {
      std::cerr << "leadctl: is `leadflow serve` running at " << g.server
                << "? Retrying with the same --id is safe.\n";
    } else {
      std::cerr << "leadctl: the server could not do it now; retry with the same --id (safe: "
                   "it is never applied twice).\n";
    }
    return kExitUnavailable;
  }
  return kExitRefused;
}

// Reads every line first: a file with any malformed line sends nothing.
int RunBatch(const std::shared_ptr<grpc::Channel>& channel, const Global& g,
             const std::string& path, size_t chunk) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) {
      std::cerr << "leadctl: " << path << ": cannot open\n";
      return kExitUsage;
    }
    in = &file;
  }
  std::vector<v1::Command> commands;
  std::vector<int> line_of;
  std::vector<std::string> command_id_of;
  // The whole file first: a line without its own command id gets one derived from the file's
  // content and its line number, so re-running the same file is a retry (nothing applies
  // twice) while the same line in another file, or twice in one file, is new work.
  std::vector<std::string> lines;
  std::string content, line;
  while (std::getline(*in, line)) {
    content.append(line).push_back('\n');
    lines.push_back(std::move(line));
  }
  const std::string file_id = common::Sha256Hex(content, 16);
  absl::flat_hash_map<std::string, int> first_seen;  // line text -> first line number
  std::vector<std::string> repeats;
  int number = 0, bad = 0;
  for (const std::string& raw : lines) {
    ++number;
    absl::string_view text = absl::StripAsciiWhitespace(raw);
    if (text.empty() || text[0] == '#') continue;
    v1::Command c;
    auto st = google::protobuf::util::JsonStringToMessage(std::string(text), &c);
    if (!st.ok()) {
      std::cerr << "leadctl: " << path << ":" << number
                << ": not a leadflow.v1.Command: " << st.message() << "\n";
      if (++bad >= 20) break;
      continue;
    }
    v1::CommandMeta* meta = common::MutableMetaOf(&c);
    if (meta == nullptr) {
      std::cerr << "leadctl: " << path << ":" << number << ": no command in this line\n";
      ++bad;
      continue;
    }
    if (meta->command_id().empty()) {
      meta->set_command_id(absl::StrCat("batch-", file_id, "-", number));
      auto [seen, fresh] = first_seen.try_emplace(std::string(text), number);
      if (!fresh) {
        repeats.push_back(absl::StrCat("line ", number, " repeats line ", seen->second));
      }
    }
    if (meta->actor().id().empty() && !g.actor.empty()) {
      meta->mutable_actor()->set_kind(v1::Actor::KIND_USER);
      meta->mutable_actor()->set_id(g.actor);
    }
    command_id_of.push_back(meta->command_id());
    commands.push_back(std::move(c));
    line_of.push_back(number);
  }
  if (bad > 0) {
    std::cerr << "leadctl: " << bad << " malformed line(s); nothing was sent\n";
    return kExitUsage;
  }
  if (!repeats.empty()) {
    // Two identical lines are two changes (a rep called twice): both are applied. Say so, in
    // case one of them was pasted by mistake.
    std::cerr << "leadctl: note: " << repeats.size()
              << " line(s) repeat an earlier line exactly; each is applied as its own change ("
              << repeats.front() << (repeats.size() > 1 ? ", ..." : "")
              << "). Give lines their own meta.command_id to make that explicit.\n";
  }

  auto stub = v1::LeadCommandService::NewStub(channel);
  const absl::Time start = absl::Now();
  size_t ok = 0, refused = 0;
  std::vector<std::string> refusals;
  for (size_t begin = 0; begin < commands.size(); begin += chunk) {
    const size_t end = std::min(commands.size(), begin + chunk);
    v1::CommandBatch request;
    for (size_t i = begin; i < end; ++i) *request.add_commands() = commands[i];
    v1::CommandBatchReply reply;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g.timeout_seconds));
    Authorize(ctx, g);
    grpc::Status st = stub->ExecuteBatch(&ctx, request, &reply);
    if (!st.ok()) {
      std::cerr << "\nleadctl: stopped at line " << line_of[begin] << " (" << begin << " of "
                << commands.size() << " commands sent; re-run the same file to resume: applied "
                << "lines are recognised and not applied twice)\n";
      return Fail(st, g);
    }
    for (int i = 0; i < reply.results_size(); ++i) {
      const v1::CommandResult& r = reply.results(i);
      const int at = line_of[begin + i];
      if (g.json) {
        google::protobuf::Struct row;
        (*row.mutable_fields())["line"].set_number_value(at);
        (*row.mutable_fields())["code"].set_number_value(r.code());
        if (r.code() == 0) {
          (*row.mutable_fields())["lead_id"].set_string_value(r.reply().lead_id());
          (*row.mutable_fields())["replayed"].set_bool_value(r.reply().replayed());
          (*row.mutable_fields())["command_id"].set_string_value(command_id_of[begin + i]);
          auto* ids = (*row.mutable_fields())["event_ids"].mutable_list_value();
          for (const std::string& id : r.reply().event_ids())
            ids->add_values()->set_string_value(id);
        } else {
          (*row.mutable_fields())["message"].set_string_value(r.message());
        }
        std::string out;
        (void)google::protobuf::util::MessageToJsonString(row, &out);
        std::cout << out << "\n";
      }
      if (r.code() == 0) {
        ++ok;
      } else {
        ++refused;
        refusals.push_back(absl::StrCat("line ", at, ": ", r.message()));
      }
    }
    const double secs = absl::ToDoubleSeconds(absl::Now() - start);
    std::cerr << "\rbatch: " << end << "/" << commands.size() << " commands (" << ok << " ok, "
              << refused << " refused), " << static_cast<int64_t>(end / std::max(secs, 1e-3))
              << " commands/s" << std::flush;
  }
  std::cerr << "\n";
  if (!g.json) {
    for (const std::string& r : refusals) std::cout << "refused " << r << "\n";
    std::cout << "batch: " << ok << " applied or already applied, " << refused << " refused, of "
              << commands.size() << " commands\n";
  }
  return refused == 0 ? 0 : kExitRefused;
}

}  // namespace

// The analytics commands: funnel cohort/activity, pipeline, queue, winback, exits, exit-reasons.
int Analytics(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext& ctx,
              const Global& g, const std::string& from, const std::string& to,
              const std::string& split, const std::string& bucket, const std::string& kind,
              const std::string& as_of, const std::string& token, int within_days, int days,
              bool days_set, int limit, const std::string& what) {
  const Format format = g.csv ? Format::kCsv : Format::kTable;
  auto usage = [](const absl::Status& st) {
    std::cerr << "leadctl: " << st.message() << "\n";
    return kExitUsage;
  };
  auto range = [&](google::protobuf::Timestamp* f, google::protobuf::Timestamp* t) {
    auto pf = ParseTime("--from", from);
    if (!pf.ok()) return pf.status();
    auto pt = ParseTime("--to", to);
    if (!pt.ok()) return pt.status();
    *f = *pf;
    *t = *pt;
    return absl::OkStatus();
  };
  auto print = [&](const google::protobuf::Message& reply, const std::string& text) {
    if (g.json) {
      std::cout << Json(reply);
    } else {
      std::cout << text;
    }
    return 0;
  };
  auto funnel_stub = v1::FunnelQueryService::NewStub(channel);
  auto reproc_stub = v1::ReprocessingQueryService::NewStub(channel);
  if (what == "cohort") {
    v1::CohortFunnelRequest req;
    if (absl::Status st = range(req.mutable_captured_from(), req.mutable_captured_to()); !st.ok()) {
      return usage(st);
    }
    req.set_split(split);
    if (within_days != -1) req.set_within_days(within_days);
    v1::CohortFunnelReport resp;
    grpc::Status st = funnel_stub->GetCohortFunnel(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp, RenderCohort(resp, format));
  }
  if (what == "activity") {
    v1::ActivityRequest req;
    if (absl::Status st = range(req.mutable_from(), req.mutable_to()); !st.ok()) return usage(st);
    req.set_split(split);
    if (bucket == "day") {
      req.set_bucket(v1::ActivityRequest::BUCKET_DAY);
    } else if (bucket == "week") {
      req.set_bucket(v1::ActivityRequest::BUCKET_WEEK);
    } else if (bucket == "month") {
      req.set_bucket(v1::ActivityRequest::BUCKET_MONTH);
    } else {
      return usage(absl::InvalidArgumentError(
          absl::StrCat("--bucket: unknown value '", bucket, "'; one of: day, week, month")));
    }
    v1::ActivityReport resp;
    grpc::Status st = funnel_stub->GetActivity(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp, RenderActivity(resp, format));
  }
  if (what == "pipeline") {
    v1::PipelineRequest req;
    req.set_split(split);
    v1::PipelineReport resp;
    grpc::Status st = funnel_stub->GetPipeline(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp, RenderPipeline(resp, format));
  }
  google::protobuf::Timestamp as_of_ts;
  if (!as_of.empty()) {
    auto t = ParseTime("--as-of", as_of);
    if (!t.ok()) return usage(t.status());
    as_of_ts = *t;
  }
  const std::string when = as_of.empty() ? "now" : common::Rfc3339(common::FromProto(as_of_ts));
  if (what == "queue") {
    v1::RecontactQueueRequest req;
    if (!as_of.empty()) *req.mutable_as_of() = as_of_ts;
    req.set_page_size(limit);
    req.set_page_token(token);
    v1::RecontactQueueResponse resp;
    grpc::Status st = reproc_stub->GetRecontactQueue(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp, RenderExits(resp.leads(), resp.next_page_token(),
                                   absl::StrCat("Re-contact queue: postponed leads to call back "
                                                "(revisit date on or before ",
                                                when, ")"),
                                   format));
  }
  if (what == "winback") {
    v1::WinBackRequest req;
    if (days_set) req.set_rejected_more_than_days(days);
    if (!as_of.empty()) *req.mutable_as_of() = as_of_ts;
    req.set_page_size(limit);
    req.set_page_token(token);
    v1::WinBackResponse resp;
    grpc::Status st = reproc_stub->GetWinBackList(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp,
                 RenderExits(resp.leads(), resp.next_page_token(),
                             absl::StrCat("Win-back candidates: rejected more than ", days,
                                          " days before ", when, ", no outbound contact since"),
                             format));
  }
  if (what == "exits") {
    v1::ListExitsRequest req;
    if (absl::Status st = range(req.mutable_from(), req.mutable_to()); !st.ok()) return usage(st);
    if (!kind.empty()) {
      auto k = ParseEnum("--kind", v1::ExitKind_descriptor(), kind);
      if (!k.ok()) return usage(k.status());
      req.set_kind(static_cast<v1::ExitKind>(*k));
    }
    req.set_page_size(limit);
    req.set_page_token(token);
    v1::ListExitsResponse resp;
    grpc::Status st = reproc_stub->ListExits(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    return print(resp,
                 RenderExits(resp.exits(), resp.next_page_token(),
                             absl::StrCat("Exits ", from, " .. ", to, " (oldest first)"), format));
  }
  v1::ExitSummaryRequest req;
  if (absl::Status st = range(req.mutable_from(), req.mutable_to()); !st.ok()) return usage(st);
  v1::ExitSummary resp;
  grpc::Status st = reproc_stub->GetExitSummary(&ctx, req, &resp);
  if (!st.ok()) return Fail(st, g);
  return print(resp, RenderExitSummary(resp, format));
}

int Main(int argc, char** argv) {
  Global g;
  const char* env_server = std::getenv("LEADFLOW_SERVER");
  g.server = env_server != nullptr ? env_server : "127.0.0.1:50051";
  const char* data_dir = std::getenv("LEADFLOW_DATA_DIR");
  g.data_dir = data_dir != nullptr && *data_dir != '\0' ? data_dir : "./leadflow-data";
  std::string actor_flag;

  CLI::App app{"leadctl: command-line client of leadflow"};
  app.footer(
      "Exit codes: 0 ok, 1 refused by the server, 2 bad usage or input, 3 server unreachable "
      "(retry with the same --id is safe).\nServer address: --server or $LEADFLOW_SERVER.");
  app.require_subcommand(1);
  // Global options (--json, --csv, --server, --token, ...) are accepted anywhere on the line,
  // before or after the subcommand: each subcommand inherits this.
  app.fallthrough();
  app.add_option("--server", g.server, "leadflow address")->capture_default_str();
  app.add_flag("--json", g.json, "Print replies as JSON (for scripts)");
  app.add_flag("--csv", g.csv, "Print analytics tables as CSV (funnel, pipeline, queue, ...)");
  app.add_option("--actor", actor_flag,
                 "On whose behalf (recorded as the actor's on_behalf_of note; the actor is the "
                 "token's subject). Without a token: the actor itself (default $USER)");
  app.add_option("--token", g.token, "Bearer token (also $LEADFLOW_TOKEN)");
  app.add_option("--token-file", g.token_file,
                 "File holding the bearer token (also $LEADFLOW_TOKEN_FILE)");
  app.add_option("--data-dir", g.data_dir,
                 "Data directory of a leadflow on this machine: its local admin token "
                 "(auth/admin.token) is used when no token is given (also $LEADFLOW_DATA_DIR)")
      ->capture_default_str();
  app.add_flag("--tls", g.tls, "Connect over TLS (system CAs unless --ca)");
  app.add_option("--ca", g.ca,
                 "CA certificate (PEM) the server's certificate is checked against; "
                 "implies --tls");
  app.add_option("--cert", g.cert, "Client certificate (PEM), for servers that require one");
  app.add_option("--key", g.key, "Private key (PEM) of --cert");
  app.add_option("--timeout", g.timeout_seconds, "RPC deadline in seconds")->capture_default_str();

  // Each command subcommand sets `build`; `get` sets `lead_to_get`.
  std::function<absl::StatusOr<v1::Command>()> build;
  std::string lead_to_get;
  MetaFlags m;
  auto with_meta = [&](auto* body) -> absl::Status {
    auto meta = BuildMeta(m, g);
    if (!meta.ok()) return meta.status();
    *body->mutable_meta() = *meta;
    return absl::OkStatus();
  };
  // When `cmd` is chosen, `build` makes its command: the body `mutable_body` of v1::Command with
  // the shared meta flags, then `fill(body)` for the command's own fields.
  auto builds = [&](CLI::App* cmd, auto mutable_body, auto fill) {
    cmd->callback([&build, &with_meta, mutable_body, fill] {
      build = [&with_meta, mutable_body, fill]() -> absl::StatusOr<v1::Command> {
        v1::Command c;
        auto* b = (c.*mutable_body)();
        LEADFLOW_RETURN_IF_ERROR(with_meta(b));
        LEADFLOW_RETURN_IF_ERROR(fill(b));
        return c;
      };
    });
  };

  // ---- capture ----
  struct {
    std::string name, email, phone, company, title, source, origin, campaign, cost, temperature,
        note;
  } cap;
  CLI::App* capture =
      app.add_subcommand("capture", "Capture a lead (a known contact becomes an inquiry)");
  capture->add_option("--name", cap.name, "Full name of the person")->required();
  capture->add_option("--email", cap.email, "Email (email or phone required)");
  capture->add_option("--phone", cap.phone, "Phone in international format, e.g. +48 123 456 789");
  capture->add_option("--company", cap.company, "Company");
  capture->add_option("--title", cap.title, "Job title");
  capture
      ->add_option("--source", cap.source,
                   "Source channel: web-form, inbound-call, inbound-email, third-party, "
                   "referral, event, cold-call, social, webinar, content-download")
      ->required();
  capture->add_option("--origin", cap.origin, "seed, net or spear (default: from the source)");
  capture->add_option("--campaign", cap.campaign, "Campaign");
  capture->add_option("--cost", cap.cost, "Acquisition cost, e.g. 'EUR 35.00'");
  capture->add_option("--temperature", cap.temperature, "cold, warm or hot");
  capture->add_option("--note", cap.note, "What the person is interested in");
  AddMetaFlags(capture, &m);
  builds(capture, &v1::Command::mutable_capture_lead, [&](v1::CaptureLead* b) -> absl::Status {
    b->mutable_person()->set_full_name(cap.name);
    b->set_email(cap.email);
    b->set_phone(cap.phone);
    b->set_company(cap.company);
    b->set_title(cap.title);
    b->set_campaign(cap.campaign);
    b->set_interest_note(cap.note);
    v1::SourceChannel source{};
    LEADFLOW_RETURN_IF_ERROR(
        SetEnum("--source", cap.source, v1::SourceChannel_descriptor(), &source));
    b->set_source_channel(source);
    v1::OriginType origin{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--origin", cap.origin, v1::OriginType_descriptor(), &origin));
    b->set_origin_type(origin);
    v1::Temperature temp{};
    LEADFLOW_RETURN_IF_ERROR(
        SetEnum("--temperature", cap.temperature, v1::Temperature_descriptor(), &temp));
    b->set_temperature(temp);
    if (!cap.cost.empty()) {
      auto cost = ParseMoney("--cost", cap.cost);
      if (!cost.ok()) return cost.status();
      *b->mutable_acquisition_cost() = *cost;
    }
    return absl::OkStatus();
  });

  // Helper for commands on one lead or customer given as the first positional argument.
  std::string target;
  auto on_lead = [&](const std::string& name, const std::string& help,
                     const std::string& what = "LEAD") {
    CLI::App* cmd = app.add_subcommand(name, help);
    cmd->add_option(what == "LEAD" ? "lead" : "customer", target,
                    what == "LEAD" ? "Lead id (ld_...)" : "Customer id (cu_...)")
        ->required();
    AddMetaFlags(cmd, &m);
    return cmd;
  };

  struct {
    std::string source, campaign, note, name, email, phone, company, title, owner, team, reason,
        temperature, kind, direction, outcome, notes, interaction_id, due, follow_up_id, assignee,
        budget, decision_maker, need, decision_by, stage, text, until, into, deal, contract,
        invoice, account_owner, legal_name, tax_id, registration, billing_address, amount,
        reference, description, comment;
    int64_t duration = 0;
    int score = -1;
  } f;

  CLI::App* inquiry = on_lead("inquiry", "Record that a known contact came back");
  inquiry->add_option("--source", f.source, "Source channel of the inquiry");
  inquiry->add_option("--campaign", f.campaign, "Campaign");
  inquiry->add_option("--note", f.note, "What they asked");
  builds(inquiry, &v1::Command::mutable_record_inquiry, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::SourceChannel s{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--source", f.source, v1::SourceChannel_descriptor(), &s));
    b->set_source_channel(s);
    b->set_campaign(f.campaign);
    b->set_note(f.note);
    return absl::OkStatus();
  });

  CLI::App* update = on_lead("update-contact", "Change a lead's contact details");
  update->add_option("--name", f.name, "Full name");
  update->add_option("--email", f.email, "Email ('' clears it)");
  update->add_option("--phone", f.phone, "Phone ('' clears it)");
  update->add_option("--company", f.company, "Company");
  update->add_option("--title", f.title, "Job title");
  builds(update, &v1::Command::mutable_update_contact_details, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    if (update->count("--name")) b->set_full_name(f.name);
    if (update->count("--email")) b->set_email(f.email);
    if (update->count("--phone")) b->set_phone(f.phone);
    if (update->count("--company")) b->set_company(f.company);
    if (update->count("--title")) b->set_title(f.title);
    return absl::OkStatus();
  });

  CLI::App* assign = on_lead("assign", "Assign a lead to an owner");
  assign->add_option("--owner", f.owner, "New owner")->required();
  assign->add_option("--team", f.team, "Team");
  assign->add_option("--reason", f.reason, "Why");
  builds(assign, &v1::Command::mutable_assign_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_owner(f.owner);
    b->set_team(f.team);
    b->set_reason(f.reason);
    return absl::OkStatus();
  });

  CLI::App* temperature = on_lead("temperature", "Set a lead's temperature");
  temperature->add_option("value", f.temperature, "cold, warm or hot")->required();
  temperature->add_option("--reason", f.reason, "Why");
  builds(temperature, &v1::Command::mutable_set_temperature, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::Temperature t{};
    LEADFLOW_RETURN_IF_ERROR(
        SetEnum("temperature", f.temperature, v1::Temperature_descriptor(), &t));
    b->set_temperature(t);
    b->set_reason(f.reason);
    return absl::OkStatus();
  });

  CLI::App* interaction = on_lead("interaction", "Log a call, email, meeting, demo, ...");
  interaction->alias("log");
  interaction
      ->add_option("--kind", f.kind,
                   "call, email, meeting, demo, free-trial, offer-sent, price-list-sent, "
                   "mailing, webinar, note")
      ->required();
  interaction->add_option("--direction", f.direction, "inbound or outbound")->required();
  interaction->add_option("--outcome", f.outcome,
                          "connected, no-answer, replied, no-reply, positive, negative");
  interaction->add_option("--duration", f.duration, "Duration in seconds");
  interaction->add_option("--notes", f.notes, "Notes");
  interaction->add_option("--interaction-id", f.interaction_id, "Your id for the interaction");
  builds(interaction, &v1::Command::mutable_log_interaction, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::InteractionKind k{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--kind", f.kind, v1::InteractionKind_descriptor(), &k));
    b->set_kind(k);
    v1::Direction d{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--direction", f.direction, v1::Direction_descriptor(), &d));
    b->set_direction(d);
    v1::Outcome o{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--outcome", f.outcome, v1::Outcome_descriptor(), &o));
    b->set_outcome(o);
    b->set_duration_seconds(f.duration);
    b->set_notes(f.notes);
    b->set_interaction_id(f.interaction_id);
    return absl::OkStatus();
  });

  CLI::App* follow_up = on_lead("follow-up", "Schedule a follow-up");
  follow_up->add_option("--due", f.due, "When (RFC 3339 or YYYY-MM-DD)")->required();
  follow_up->add_option("--kind", f.kind, "Planned interaction kind");
  follow_up->add_option("--note", f.note, "Note");
  follow_up->add_option("--follow-up-id", f.follow_up_id, "Id (default: the command id)");
  follow_up->add_option("--assignee", f.assignee, "Who (default: the lead's owner)");
  builds(follow_up, &v1::Command::mutable_schedule_follow_up, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    auto due = ParseTime("--due", f.due);
    if (!due.ok()) return due.status();
    *b->mutable_due_at() = *due;
    v1::InteractionKind k{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--kind", f.kind, v1::InteractionKind_descriptor(), &k));
    b->set_kind(k);
    b->set_note(f.note);
    b->set_follow_up_id(f.follow_up_id);
    b->set_assignee(f.assignee);
    return absl::OkStatus();
  });

  CLI::App* complete = on_lead("complete-follow-up", "Mark a follow-up done");
  complete->add_option("follow_up_id", f.follow_up_id, "The follow-up's id")->required();
  complete->add_option("--note", f.note, "Note");
  builds(complete, &v1::Command::mutable_complete_follow_up, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_follow_up_id(f.follow_up_id);
    b->set_note(f.note);
    return absl::OkStatus();
  });

  CLI::App* qualify = on_lead("qualify", "Qualify a lead (BANT): it becomes a prospect");
  qualify->add_option("--budget", f.budget, "Budget, e.g. 'EUR 50000'")->required();
  qualify->add_option("--decision-maker", f.decision_maker, "Who decides")->required();
  qualify->add_option("--need", f.need, "The need")->required();
  qualify->add_option("--decision-by", f.decision_by, "Expected decision date")->required();
  qualify->add_option("--stage", f.stage, "Initial stage (default: qualification)");
  builds(qualify, &v1::Command::mutable_qualify_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    auto budget = ParseMoney("--budget", f.budget);
    if (!budget.ok()) return budget.status();
    *b->mutable_budget() = *budget;
    b->set_decision_maker(f.decision_maker);
    b->set_need(f.need);
    auto by = ParseTime("--decision-by", f.decision_by);
    if (!by.ok()) return by.status();
    *b->mutable_expected_decision_at() = *by;
    v1::SalesStage s{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--stage", f.stage, v1::SalesStage_descriptor(), &s));
    b->set_stage(s);
    return absl::OkStatus();
  });

  CLI::App* stage = on_lead("stage", "Move a qualified lead to another sales stage");
  stage
      ->add_option("stage", f.stage,
                   "qualification, needs-analysis, solution-presentation, objection-handling, "
                   "closing")
      ->required();
  builds(stage, &v1::Command::mutable_change_stage, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::SalesStage s{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("stage", f.stage, v1::SalesStage_descriptor(), &s));
    b->set_stage(s);
    return absl::OkStatus();
  });

  CLI::App* reject = on_lead("reject", "The lead said no");
  reject
      ->add_option("--reason", f.reason,
                   "no-budget, no-need, bad-timing, chose-competitor, no-authority, "
                   "unresponsive, other")
      ->required();
  reject->add_option("--text", f.text, "Free text (required for 'other')");
  builds(reject, &v1::Command::mutable_reject_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::RejectionReason r{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--reason", f.reason, v1::RejectionReason_descriptor(), &r));
    b->set_reason(r);
    b->set_text(f.text);
    return absl::OkStatus();
  });

  CLI::App* postpone = on_lead("postpone", "\"Not now\": revisit later");
  postpone->add_option("--until", f.until, "Revisit date")->required();
  postpone->add_option("--reason", f.reason, "Why");
  builds(postpone, &v1::Command::mutable_postpone_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    auto until = ParseTime("--until", f.until);
    if (!until.ok()) return until.status();
    *b->mutable_revisit_at() = *until;
    b->set_reason(f.reason);
    return absl::OkStatus();
  });

  CLI::App* disqualify = on_lead("disqualify", "Not a fit");
  disqualify
      ->add_option("--reason", f.reason,
                   "no-authority, not-target-market, invalid-contact, no-need, other")
      ->required();
  disqualify->add_option("--text", f.text, "Free text (required for 'other')");
  builds(disqualify, &v1::Command::mutable_disqualify_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    v1::DisqualificationReason r{};
    LEADFLOW_RETURN_IF_ERROR(
        SetEnum("--reason", f.reason, v1::DisqualificationReason_descriptor(), &r));
    b->set_reason(r);
    b->set_text(f.text);
    return absl::OkStatus();
  });

  CLI::App* reactivate = on_lead("reactivate",
                                 "Bring back a rejected, postponed or "
                                 "disqualified lead");
  reactivate->add_option("--note", f.note, "Note");
  builds(reactivate, &v1::Command::mutable_reactivate_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_note(f.note);
    return absl::OkStatus();
  });

  CLI::App* merge = on_lead("merge", "Fold a duplicate lead into another");
  merge->add_option("--into", f.into, "Survivor lead id")->required();
  merge->add_option("--note", f.note, "Note");
  builds(merge, &v1::Command::mutable_merge_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_survivor_lead_id(f.into);
    b->set_note(f.note);
    return absl::OkStatus();
  });

  CLI::App* convert = on_lead("convert", "Convert a qualified lead into a customer");
  convert->add_option("--deal", f.deal, "Deal value, e.g. 'EUR 42000'")->required();
  convert->add_option("--contract", f.contract, "Contract reference");
  convert->add_option("--invoice", f.invoice, "Invoice reference");
  convert->add_option("--account-owner", f.account_owner, "Account owner (default: lead owner)");
  builds(convert, &v1::Command::mutable_convert_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(target);
    auto deal = ParseMoney("--deal", f.deal);
    if (!deal.ok()) return deal.status();
    *b->mutable_deal_value() = *deal;
    b->set_contract_ref(f.contract);
    b->set_invoice_ref(f.invoice);
    b->set_account_owner(f.account_owner);
    return absl::OkStatus();
  });

  // ---- erase (admin) ----
  struct {
    std::string lead, email, phone;
  } er;
  CLI::App* erase = app.add_subcommand(
      "erase",
      "Erase a person: destroy the lead's data key, so every personal field it ever "
      "had is gone for good (status and funnel figures stay). admin only");
  erase->add_option("lead", er.lead, "Lead id (ld_...); or name it by --email or --phone");
  erase->add_option("--email", er.email, "The email of the lead to erase");
  erase->add_option("--phone", er.phone, "The phone of the lead to erase");
  AddMetaFlags(erase, &m);
  builds(erase, &v1::Command::mutable_erase_lead, [&](auto* b) -> absl::Status {
    b->set_lead_id(er.lead);
    b->set_email(er.email);
    b->set_phone(er.phone);
    return absl::OkStatus();
  });

  CLI::App* profile = on_lead("customer-profile", "Update a customer's profile", "CUSTOMER");
  profile->add_option("--legal-name", f.legal_name, "Legal name");
  profile->add_option("--tax-id", f.tax_id, "Tax id");
  profile->add_option("--registration", f.registration, "Registration number");
  profile->add_option("--billing-address", f.billing_address, "Billing address");
  profile->add_option("--account-owner", f.account_owner, "Account owner");
  builds(profile, &v1::Command::mutable_update_customer_profile, [&](auto* b) -> absl::Status {
    b->set_customer_id(target);
    if (profile->count("--legal-name")) b->set_legal_name(f.legal_name);
    if (profile->count("--tax-id")) b->set_tax_id(f.tax_id);
    if (profile->count("--registration")) b->set_registration_number(f.registration);
    if (profile->count("--billing-address")) b->set_billing_address(f.billing_address);
    if (profile->count("--account-owner")) b->set_account_owner(f.account_owner);
    return absl::OkStatus();
  });

  CLI::App* purchase = on_lead("purchase", "Record a customer purchase", "CUSTOMER");
  purchase->add_option("--kind", f.kind, "first, repeat, upsell or cross-sell")->required();
  purchase->add_option("--amount", f.amount, "Amount, e.g. 'EUR 1200'")->required();
  purchase->add_option("--reference", f.reference, "Order/invoice reference");
  purchase->add_option("--description", f.description, "What was bought");
  builds(purchase, &v1::Command::mutable_record_purchase, [&](auto* b) -> absl::Status {
    b->set_customer_id(target);
    v1::PurchaseKind k{};
    LEADFLOW_RETURN_IF_ERROR(SetEnum("--kind", f.kind, v1::PurchaseKind_descriptor(), &k));
    b->set_kind(k);
    auto amount = ParseMoney("--amount", f.amount);
    if (!amount.ok()) return amount.status();
    *b->mutable_amount() = *amount;
    b->set_reference(f.reference);
    b->set_description(f.description);
    return absl::OkStatus();
  });

  CLI::App* nps = on_lead("nps", "Record a Net Promoter Score (0-10)", "CUSTOMER");
  nps->add_option("score", f.score, "0 to 10")->required();
  nps->add_option("--comment", f.comment, "Comment");
  builds(nps, &v1::Command::mutable_record_nps, [&](auto* b) -> absl::Status {
    b->set_customer_id(target);
    b->set_score(f.score);
    b->set_comment(f.comment);
    return absl::OkStatus();
  });

  // ---- batch ----
  std::string batch_file;
  size_t chunk = 1000;
  CLI::App* batch = app.add_subcommand(
      "batch",
      "Apply commands from a file of JSON lines (one leadflow.v1.Command per line, '-' = stdin). "
      "A line without meta.command_id gets one derived from the file's content and the line's "
      "number: re-running the same file is a retry (no line applies twice), the same line in "
      "another file (or twice in one) is new work.");
  batch->add_option("file", batch_file, "JSON-lines file, or - for standard input")->required();
  batch->add_option("--chunk", chunk, "Commands per RPC (1-10000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));

  CLI::App* get = app.add_subcommand("get", "Show a lead (the lead view)");
  get->add_option("lead", lead_to_get, "Lead id (ld_...)")->required();
  std::string min_position;
  get->add_option("--after", min_position,
                  "Wait until the view has applied this log position, PARTITION:OFFSET (the "
                  "'logged at' of a command's reply)");
  CLI::App* timeline = app.add_subcommand("timeline", "Every event of a lead, in order");
  timeline->add_option("lead", lead_to_get, "Lead id (ld_...)")->required();
  std::string find_email, find_phone;
  CLI::App* find = app.add_subcommand("find", "Find a lead by email or phone");
  find->add_option("--email", find_email, "Email");
  find->add_option("--phone", find_phone, "Phone");
  struct {
    std::string status, stage, owner, source, temperature, from, to, sort = "captured", token;
    bool desc = false;
    int limit = 50;
  } lf;
  CLI::App* list = app.add_subcommand("list", "List leads with filters");
  list->add_option("--status", lf.status, "new, contacted, qualified, converted, ...");
  list->add_option("--stage", lf.stage, "Sales stage");
  list->add_option("--owner", lf.owner, "Owner");
  list->add_option("--source", lf.source, "Source channel");
  list->add_option("--temperature", lf.temperature, "cold, warm or hot");
  list->add_option("--captured-from", lf.from, "Captured at or after (date or time)");
  list->add_option("--captured-to", lf.to, "Captured before (date or time)");
  list->add_option("--sort", lf.sort, "captured or activity")->capture_default_str();
  list->add_flag("--desc", lf.desc, "Newest first");
  list->add_option("--limit", lf.limit, "Page size (1-1000)")->capture_default_str();
  list->add_option("--page-token", lf.token, "Continue a listing");
  std::string overdue_owner, as_of;
  CLI::App* overdue = app.add_subcommand("overdue", "Follow-ups past due for an owner");
  overdue->add_option("--owner", overdue_owner, "Assignee")->required();
  overdue->add_option("--as-of", as_of, "Instead of now");
  std::string customer_ref;
  CLI::App* customer =
      app.add_subcommand("customer", "Show a customer (by cu_... or its lead ld_...)");
  customer->add_option("id", customer_ref, "Customer id or originating lead id")->required();
  std::string customers_owner;
  CLI::App* customers = app.add_subcommand("customers", "List an account owner's customers");
  customers->add_option("--owner", customers_owner, "Account owner")->required();
  // ---- analytics (funnel and reprocessing views) ----
  struct {
    std::string from, to, split, bucket = "day", kind, as_of, token;
    int within_days = 0, days = 0, limit = 0;
  } an;
  CLI::App* funnel = app.add_subcommand(
      "funnel", "Conversion funnel (docs/metrics.md): `funnel cohort` or `funnel activity`");
  funnel->require_subcommand(1);
  CLI::App* cohort = funnel->add_subcommand(
      "cohort", "Leads captured in [--from, --to): how many reached each milestone, how fast");
  CLI::App* activity = funnel->add_subcommand(
      "activity", "Milestones reached in [--from, --to), whatever the capture date, by bucket");
  for (CLI::App* c : {cohort, activity}) {
    c->add_option("--from", an.from, "Start (date or time, UTC), inclusive")->required();
    c->add_option("--to", an.to, "End (date or time, UTC), exclusive")->required();
    c->add_option("--split", an.split,
                  "source_channel, origin_type, campaign, temperature or owner");
  }
  cohort->add_option("--within-days", an.within_days,
                     "Count a milestone only if reached within N days of capture");
  activity->add_option("--bucket", an.bucket, "day, week (ISO, Monday) or month")
      ->capture_default_str();
  CLI::App* pipeline = app.add_subcommand(
      "pipeline", "Open pipeline: QUALIFIED leads by stage, budgets and weighted value");
  pipeline->add_option("--split", an.split, "owner (current), source_channel, ...");
  CLI::App* queue = app.add_subcommand(
      "queue", "Re-contact queue: postponed leads whose revisit date has come, oldest first");
  CLI::App* winback = app.add_subcommand(
      "winback", "Rejected leads not contacted since, rejected more than --days ago");
  winback->add_option("--days", an.days, "Rejected more than N days ago")->required();
  for (CLI::App* c : {queue, winback}) {
    c->add_option("--as-of", an.as_of, "Instead of now (date or time)");
  }
  CLI::App* exits = app.add_subcommand(
      "exits", "Rejections, postponements and disqualifications in [--from, --to)");
  exits->add_option("--kind", an.kind, "rejected, postponed or disqualified");
  CLI::App* reasons = app.add_subcommand(
      "exit-reasons", "Exits in [--from, --to) by reason, with reactivations and conversions");
  for (CLI::App* c : {exits, reasons}) {
    c->add_option("--from", an.from, "Start (date or time, UTC), inclusive")->required();
    c->add_option("--to", an.to, "End (date or time, UTC), exclusive")->required();
  }
  for (CLI::App* c : {queue, winback, exits}) {
    c->add_option("--limit", an.limit, "Page size (1-1000, default 50)");
    c->add_option("--page-token", an.token, "Continue a listing");
  }
  CLI::App* views = app.add_subcommand("views", "View positions and health per partition");
  CLI::App* health = app.add_subcommand("health", "Health of each leadflow service");
  CLI::App* events = app.add_subcommand(
      "events",
      "Stream the log's events as JSON lines (role downstream or admin): from the "
      "start, or from --from positions; stops at the end unless --follow");
  std::vector<std::string> events_from;
  bool events_follow = false;
  events->add_option("--from", events_from,
                     "PARTITION:OFFSET of the next event to print, per partition (repeatable; "
                     "a printed event's offset + 1 resumes after it)");
  events->add_flag("--follow", events_follow, "Keep printing new events until interrupted");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }

  {
    absl::StatusOr<std::string> token = FindToken(g);
    if (!token.ok()) {
      std::cerr << "leadctl: " << token.status().message() << "\n";
      return kExitUsage;
    }
    g.token = *token;
    // With a token the server records its subject as the actor; --actor is a note beside it.
    // Without one (a server with authentication off) the actor is --actor or $USER.
    const char* user = std::getenv("USER");
    g.actor = !actor_flag.empty()                ? actor_flag
              : !g.token.empty()                 ? ""
              : user != nullptr && *user != '\0' ? user
                                                 : "leadctl";
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(g);
  if (!credentials.ok()) {
    std::cerr << "leadctl: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  auto channel = grpc::CreateChannel(g.server, *credentials);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g.timeout_seconds));
  Authorize(ctx, g);

  auto lead_stub = v1::LeadQueryService::NewStub(channel);
  if (get->parsed()) {
    v1::GetLeadRequest req;
    req.set_lead_id(lead_to_get);
    if (!min_position.empty()) {
      std::vector<std::string> parts = absl::StrSplit(min_position, ':');
      int32_t partition = 0;
      int64_t offset = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &partition) ||
          !absl::SimpleAtoi(parts[1], &offset)) {
        std::cerr << "leadctl: --after: '" << min_position
                  << "' is not PARTITION:OFFSET, e.g. 3:1042\n";
        return kExitUsage;
      }
      req.mutable_min_position()->set_partition(partition);
      req.mutable_min_position()->set_offset(offset);
    }
    v1::LeadView lead;
    grpc::Status st = lead_stub->GetLead(&ctx, req, &lead);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(lead);
    } else {
      PrintLead(lead);
    }
    return 0;
  }
  if (timeline->parsed()) {
    v1::GetLeadTimelineRequest req;
    req.set_lead_id(lead_to_get);
    v1::LeadTimeline t;
    grpc::Status st = lead_stub->GetLeadTimeline(&ctx, req, &t);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(t);
      return 0;
    }
    std::cout << Cell("OCCURRED (UTC)", 16) << Cell("RECORDED (UTC)", 16) << Cell("VER", 4)
              << Cell("BY", 10) << "WHAT\n";
    for (const auto& e : t.events()) {
      std::string who = e.aggregate_type() == v1::AGGREGATE_TYPE_CUSTOMER ? "customer: " : "";
      if (e.aggregate_id() != t.lead_id() && e.aggregate_type() == v1::AGGREGATE_TYPE_LEAD) {
        who = absl::StrCat("merged ", e.aggregate_id(), ": ");
      }
      std::cout << Cell(DateTime(e.occurred_at()), 16) << Cell(DateTime(e.recorded_at()), 16)
                << Cell(absl::StrCat(e.aggregate_version()), 4) << Cell(e.actor().id(), 10) << who
                << Summarize(e) << "\n";
    }
    return 0;
  }
  if (find->parsed()) {
    v1::FindLeadRequest req;
    req.set_email(find_email);
    req.set_phone(find_phone);
    v1::LeadView lead;
    grpc::Status st = lead_stub->FindLead(&ctx, req, &lead);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(lead);
    } else {
      PrintLead(lead);
    }
    return 0;
  }
  if (list->parsed()) {
    v1::ListLeadsRequest req;
    v1::LeadStatus status{};
    v1::SalesStage stage{};
    v1::SourceChannel source{};
    v1::Temperature temp{};
    absl::Status parsed = SetEnum("--status", lf.status, v1::LeadStatus_descriptor(), &status);
    if (parsed.ok()) parsed = SetEnum("--stage", lf.stage, v1::SalesStage_descriptor(), &stage);
    if (parsed.ok()) {
      parsed = SetEnum("--source", lf.source, v1::SourceChannel_descriptor(), &source);
    }
    if (parsed.ok()) {
      parsed = SetEnum("--temperature", lf.temperature, v1::Temperature_descriptor(), &temp);
    }
    if (parsed.ok() && !lf.from.empty()) {
      auto t = ParseTime("--captured-from", lf.from);
      parsed = t.status();
      if (t.ok()) *req.mutable_captured_from() = *t;
    }
    if (parsed.ok() && !lf.to.empty()) {
      auto t = ParseTime("--captured-to", lf.to);
      parsed = t.status();
      if (t.ok()) *req.mutable_captured_to() = *t;
    }
    if (parsed.ok() && lf.sort != "captured" && lf.sort != "activity") {
      parsed = absl::InvalidArgumentError(
          absl::StrCat("--sort: unknown value '", lf.sort, "'; one of: captured, activity"));
    }
    if (!parsed.ok()) {
      std::cerr << "leadctl: " << parsed.message() << "\n";
      return kExitUsage;
    }
    req.set_status(status);
    req.set_stage(stage);
    req.set_source_channel(source);
    req.set_temperature(temp);
    req.set_owner(lf.owner);
    req.set_sort(lf.sort == "activity" ? v1::ListLeadsRequest::SORT_LAST_ACTIVITY
                                       : v1::ListLeadsRequest::SORT_CAPTURED_AT);
    req.set_descending(lf.desc);
    req.set_page_size(lf.limit);
    req.set_page_token(lf.token);
    v1::ListLeadsResponse resp;
    grpc::Status st = lead_stub->ListLeads(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(resp);
    } else {
      PrintLeadTable(resp);
    }
    return 0;
  }
  if (overdue->parsed()) {
    v1::ListOverdueFollowUpsRequest req;
    req.set_owner(overdue_owner);
    if (!as_of.empty()) {
      auto t = ParseTime("--as-of", as_of);
      if (!t.ok()) {
        std::cerr << "leadctl: " << t.status().message() << "\n";
        return kExitUsage;
      }
      *req.mutable_as_of() = *t;
    }
    v1::ListOverdueFollowUpsResponse resp;
    grpc::Status st = lead_stub->ListOverdueFollowUps(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(resp);
      return 0;
    }
    std::cout << Cell("DUE (UTC)", 16) << Cell("LEAD", 23) << Cell("NAME", 22) << Cell("KIND", 10)
              << "NOTE\n";
    for (const auto& o : resp.follow_ups()) {
      std::cout << Cell(DateTime(o.follow_up().due_at()), 16) << Cell(o.lead_id(), 23)
                << Cell(o.lead_name(), 22)
                << Cell(Short(v1::InteractionKind_descriptor(), o.follow_up().kind()), 10)
                << o.follow_up().note() << "\n";
    }
    std::cout << "(" << resp.follow_ups_size() << " overdue)\n";
    return 0;
  }
  auto customer_stub = v1::CustomerQueryService::NewStub(channel);
  auto print_customer = [&](const v1::CustomerView& c) {
    std::cout << "Customer " << c.customer_id() << "  (version " << c.version() << ")"
              << (c.erased() ? "  ERASED: personal data destroyed" : "") << "\n";
    Row("from lead", c.lead_id());
    Row("person", OrDash(c.person().full_name()));
    Row("company", OrDash(c.company()));
    Row("account owner", OrDash(c.account_owner()));
    Row("converted", absl::StrCat(DateTime(c.converted_at()), " (recorded ",
                                  DateTime(c.converted_recorded_at()), ")"));
    Row("deal", absl::StrCat(FormatMoney(c.deal_value()),
                             c.contract_ref().empty() ? "" : ", contract ", c.contract_ref(),
                             c.invoice_ref().empty() ? "" : ", invoice ", c.invoice_ref()));
    if (!c.legal_name().empty()) Row("legal name", c.legal_name());
    if (!c.tax_id().empty()) Row("tax id", c.tax_id());
    for (const auto& p : c.purchases()) {
      v1::Money total;
      total.set_currency_code(p.currency_code());
      total.set_amount_micros(p.amount_micros());
      Row("purchases", absl::StrCat(Short(v1::PurchaseKind_descriptor(), p.kind()), ": ", p.count(),
                                    ", ", FormatMoney(total)));
    }
    Row("NPS", c.has_nps()
                   ? absl::StrCat(c.latest_nps(), " (",
                                  Short(v1::NpsCategory_descriptor(), c.latest_nps_category()),
                                  ", ", DateTime(c.latest_nps_at()), ")")
                   : "-");
  };
  if (customer->parsed()) {
    v1::GetCustomerRequest req;
    if (customer_ref.rfind("ld_", 0) == 0) {
      req.set_lead_id(customer_ref);
    } else {
      req.set_customer_id(customer_ref);
    }
    v1::CustomerView c;
    grpc::Status st = customer_stub->GetCustomer(&ctx, req, &c);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(c);
    } else {
      print_customer(c);
    }
    return 0;
  }
  if (customers->parsed()) {
    v1::ListCustomersRequest req;
    req.set_account_owner(customers_owner);
    req.set_page_size(1000);
    v1::ListCustomersResponse resp;
    grpc::Status st = customer_stub->ListCustomers(&ctx, req, &resp);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(resp);
      return 0;
    }
    std::cout << Cell("CUSTOMER", 23) << Cell("NAME", 22) << Cell("CONVERTED", 16) << "DEAL\n";
    for (const auto& c : resp.customers()) {
      std::cout << Cell(c.customer_id(), 23) << Cell(c.person().full_name(), 22)
                << Cell(DateTime(c.converted_at()), 16) << FormatMoney(c.deal_value()) << "\n";
    }
    std::cout << "(" << resp.customers_size() << " customers)\n";
    return 0;
  }
  if (events->parsed()) {
    v1::StreamEventsRequest req;
    req.set_stop_at_end(!events_follow);
    for (const std::string& at : events_from) {
      std::vector<std::string> parts = absl::StrSplit(at, ':');
      int32_t partition = 0;
      int64_t offset = 0;
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &partition) ||
          !absl::SimpleAtoi(parts[1], &offset)) {
        std::cerr << "leadctl: --from: '" << at.substr(0, 32) << "' is not PARTITION:OFFSET\n";
        return kExitUsage;
      }
      v1::LogPosition* p = req.add_from();
      p->set_partition(partition);
      p->set_offset(offset);
    }
    grpc::ClientContext stream_ctx;
    Authorize(stream_ctx, g);
    if (!events_follow) {
      stream_ctx.set_deadline(std::chrono::system_clock::now() +
                              std::chrono::seconds(g.timeout_seconds));
    }
    auto reader = v1::EventStreamService::NewStub(channel)->StreamEvents(&stream_ctx, req);
    v1::StreamedEvent e;
    google::protobuf::util::JsonPrintOptions o;
    o.always_print_primitive_fields = true;  // partition 0, offset 0 are positions too
    while (reader->Read(&e)) {
      std::string line;
      (void)google::protobuf::util::MessageToJsonString(e, &line, o);
      std::cout << line << "\n";
    }
    std::cout << std::flush;
    grpc::Status st = reader->Finish();
    return st.ok() ? 0 : Fail(st, g);
  }
  if (health->parsed()) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    int unhealthy = 0;
    for (const std::string service :
         {"", "leadflow.v1.LeadCommandService", "leadflow.v1.LeadQueryService",
          "leadflow.v1.CustomerQueryService", "leadflow.v1.FunnelQueryService",
          "leadflow.v1.ReprocessingQueryService"}) {
      grpc::ClientContext hc;
      hc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g.timeout_seconds));
      grpc::health::v1::HealthCheckRequest req;
      req.set_service(service);
      grpc::health::v1::HealthCheckResponse resp;
      grpc::Status st = stub->Check(&hc, req, &resp);
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
        // One role per process: this service lives elsewhere.
        std::cout << Cell(service, 36) << "(not served by this process)\n";
        continue;
      }
      if (!st.ok()) return Fail(st, g);
      const bool ok = resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      unhealthy += !ok;
      std::cout << Cell(service.empty() ? "(server)" : service, 36)
                << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()) << "\n";
    }
    if (unhealthy > 0) std::cout << "see `leadctl views` for which partition stopped and why\n";
    return unhealthy == 0 ? 0 : kExitRefused;
  }
  if (funnel->parsed() || pipeline->parsed() || queue->parsed() || winback->parsed() ||
      exits->parsed() || reasons->parsed()) {
    return Analytics(channel, ctx, g, an.from, an.to, an.split, an.bucket, an.kind, an.as_of,
                     an.token, cohort->count("--within-days") > 0 ? an.within_days : -1, an.days,
                     winback->count("--days") > 0, an.limit,
                     cohort->parsed()     ? "cohort"
                     : activity->parsed() ? "activity"
                     : pipeline->parsed() ? "pipeline"
                     : queue->parsed()    ? "queue"
                     : winback->parsed()  ? "winback"
                     : exits->parsed()    ? "exits"
                                          : "exit-reasons");
  }
  if (views->parsed()) {
    auto admin = v1::ViewAdminService::NewStub(channel);
    v1::ViewStatus vs;
    grpc::Status st = admin->GetViewStatus(&ctx, v1::GetViewStatusRequest(), &vs);
    if (!st.ok()) return Fail(st, g);
    if (g.json) {
      std::cout << Json(vs);
      return 0;
    }
    std::cout << Cell("VIEW", 9) << Cell("PART", 5) << Cell("APPLIED", 10) << Cell("END", 10)
              << Cell("LAG", 8) << "STATE\n";
    for (const auto& p : vs.partitions()) {
      std::cout << Cell(p.view(), 9) << Cell(absl::StrCat(p.partition()), 5)
                << Cell(absl::StrCat(p.applied_offset()), 10)
                << Cell(absl::StrCat(p.end_offset()), 10)
                << Cell(absl::StrCat(std::max<int64_t>(0, p.end_offset() - p.applied_offset())), 8)
                << p.state() << (p.error().empty() ? "" : ": ") << p.error() << "\n";
    }
    return 0;
  }

  if (batch->parsed()) return RunBatch(channel, g, batch_file, chunk);

  absl::StatusOr<v1::Command> command = build();
  if (!command.ok()) {
    std::cerr << "leadctl: " << command.status().message() << "\n";
    return kExitUsage;
  }
  auto stub = v1::LeadCommandService::NewStub(channel);
  v1::CommandReply reply;
  grpc::Status st = stub->Execute(&ctx, *command, &reply);
  if (!st.ok()) return Fail(st, g);
  if (g.json) {
    std::cout << Json(reply);
  } else {
    std::string name = app.get_subcommands().front()->get_name();
    PrintReply(name, reply);
  }
  return 0;
}

}  // namespace leadflow::leadctl

int main(int argc, char** argv) { return leadflow::leadctl::Main(argc, argv); }
