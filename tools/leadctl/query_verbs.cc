// leadctl's look-ups: a lead, its timeline, lists, customers, the event stream, health and
// the views' positions.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "leadflow/v1/stream.grpc.pb.h"
#include "tools/leadctl/client.h"
#include "tools/leadctl/parse.h"
#include "tools/leadctl/show.h"
#include "tools/leadctl/verbs.h"

namespace leadflow::leadctl {
namespace {

// The flags of `list` (`count` takes its five filters).
struct ListFlags {
  std::string status, stage, owner, source, temperature, from, to, sort = "captured", token;
  bool desc = false;
  int limit = 50;
};

class QueryVerbs final : public VerbFlags {
 public:
  QueryVerbs(CLI::App& app, std::vector<Verb>& verbs);

 private:
  int Get(Session& s);
  int Timeline(Session& s);
  int Find(Session& s);
  int List(Session& s);
  int Count(Session& s);
  int Overdue(Session& s);
  int Customer(Session& s);
  int Customers(Session& s);
  int Events(Session& s);
  int Health(Session& s);
  int Views(Session& s);

  std::string lead_to_get, min_position, find_email, find_phone, overdue_owner, as_of;
  std::string customer_ref, customers_owner;
  ListFlags lf;
  std::vector<std::string> events_from;
  bool events_follow = false;
};

QueryVerbs::QueryVerbs(CLI::App& app, std::vector<Verb>& verbs) {
  CLI::App* get = app.add_subcommand("get", "Show a lead (the lead view)");
  get->add_option("lead", lead_to_get, "Lead id (ld_...)")->required();
  get->add_option("--after", min_position,
                  "Wait until the view has applied this log position, PARTITION:OFFSET (the "
                  "'logged at' of a command's reply)");
  CLI::App* timeline = app.add_subcommand("timeline", "Every event of a lead, in order");
  timeline->add_option("lead", lead_to_get, "Lead id (ld_...)")->required();
  CLI::App* find = app.add_subcommand("find", "Find a lead by email or phone");
  find->add_option("--email", find_email, "Email");
  find->add_option("--phone", find_phone, "Phone");
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
  CLI::App* count = app.add_subcommand(
      "count", "How many leads have a status, stage, owner, source and temperature");
  count->add_option("--status", lf.status, "new, contacted, qualified, converted, ...");
  count->add_option("--stage", lf.stage, "Sales stage");
  count->add_option("--owner", lf.owner, "Owner");
  count->add_option("--source", lf.source, "Source channel");
  count->add_option("--temperature", lf.temperature, "cold, warm or hot");
  CLI::App* overdue = app.add_subcommand("overdue", "Follow-ups past due for an owner");
  overdue->add_option("--owner", overdue_owner, "Assignee")->required();
  overdue->add_option("--as-of", as_of, "Instead of now");
  CLI::App* customer =
      app.add_subcommand("customer", "Show a customer (by cu_... or its lead ld_...)");
  customer->add_option("id", customer_ref, "Customer id or originating lead id")->required();
  CLI::App* customers = app.add_subcommand("customers", "List an account owner's customers");
  customers->add_option("--owner", customers_owner, "Account owner")->required();
  CLI::App* views = app.add_subcommand("views", "View positions and health per partition");
  CLI::App* health = app.add_subcommand("health", "Health of each leadflow service");
  CLI::App* events = app.add_subcommand(
      "events",
      "Stream the log's events as JSON lines (role downstream or admin): from the "
      "start, or from --from positions; stops at the end unless --follow");
  events->add_option("--from", events_from,
                     "PARTITION:OFFSET of the next event to print, per partition (repeatable; "
                     "a printed event's offset + 1 resumes after it)");
  events->add_flag("--follow", events_follow, "Keep printing new events until interrupted");
  for (auto [cmd, run] : std::initializer_list<std::pair<CLI::App*, int (QueryVerbs::*)(Session&)>>{
           {get, &QueryVerbs::Get},
           {timeline, &QueryVerbs::Timeline},
           {find, &QueryVerbs::Find},
           {list, &QueryVerbs::List},
           {count, &QueryVerbs::Count},
           {overdue, &QueryVerbs::Overdue},
           {customer, &QueryVerbs::Customer},
           {customers, &QueryVerbs::Customers},
           {events, &QueryVerbs::Events},
           {health, &QueryVerbs::Health},
           {views, &QueryVerbs::Views}}) {
    verbs.push_back({cmd, [this, run = run](Session& s) { return (this->*run)(s); }});
  }
}

int QueryVerbs::Get(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
  v1::GetLeadRequest req;
  req.set_lead_id(lead_to_get);
  if (!min_position.empty()) {
    absl::StatusOr<v1::LogPosition> at = ParsePosition("--after", min_position);
    if (!at.ok()) return Usage(at.status());
    *req.mutable_min_position() = *at;
  }
  v1::LeadView lead;
  grpc::Status st = lead_stub->GetLead(&ctx, req, &lead);
  return Answer(g, st, lead, PrintLead);
}

int QueryVerbs::Timeline(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
  v1::GetLeadTimelineRequest req;
  req.set_lead_id(lead_to_get);
  v1::LeadTimeline t;
  grpc::Status st = lead_stub->GetLeadTimeline(&ctx, req, &t);
  return Answer(g, st, t, PrintTimeline);
}

int QueryVerbs::Find(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
  v1::FindLeadRequest req;
  req.set_email(find_email);
  req.set_phone(find_phone);
  v1::LeadView lead;
  grpc::Status st = lead_stub->FindLead(&ctx, req, &lead);
  return Answer(g, st, lead, PrintLead);
}

// The filters `list` and `count` share, parsed into `req`.
template <typename Request>
absl::Status SetFilters(const ListFlags& f, Request* req) {
  v1::LeadStatus st{};
  v1::SalesStage sg{};
  v1::SourceChannel src{};
  v1::Temperature temp{};
  absl::Status parsed = SetEnum("--status", f.status, v1::LeadStatus_descriptor(), &st);
  if (parsed.ok()) parsed = SetEnum("--stage", f.stage, v1::SalesStage_descriptor(), &sg);
  if (parsed.ok()) parsed = SetEnum("--source", f.source, v1::SourceChannel_descriptor(), &src);
  if (parsed.ok()) {
    parsed = SetEnum("--temperature", f.temperature, v1::Temperature_descriptor(), &temp);
  }
  req->set_status(st);
  req->set_stage(sg);
  req->set_source_channel(src);
  req->set_temperature(temp);
  req->set_owner(f.owner);
  return parsed;
}

int QueryVerbs::Count(Session& s) {
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
  v1::CountLeadsRequest req;
  absl::Status parsed = SetFilters(lf, &req);
  if (!parsed.ok()) {
    std::cerr << "leadctl: " << parsed.message() << "\n";
    return kExitUsage;
  }
  v1::CountLeadsResponse resp;
  grpc::Status st = lead_stub->CountLeads(&s.ctx, req, &resp);
  return Answer(s.g, st, resp,
                [](const v1::CountLeadsResponse& r) { std::cout << r.count() << "\n"; });
}

int QueryVerbs::List(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
  v1::ListLeadsRequest req;
  absl::Status parsed = SetFilters(lf, &req);
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
  req.set_sort(lf.sort == "activity" ? v1::ListLeadsRequest::SORT_LAST_ACTIVITY
                                     : v1::ListLeadsRequest::SORT_CAPTURED_AT);
  req.set_descending(lf.desc);
  req.set_page_size(lf.limit);
  req.set_page_token(lf.token);
  v1::ListLeadsResponse resp;
  grpc::Status st = lead_stub->ListLeads(&ctx, req, &resp);
  return Answer(g, st, resp, PrintLeadTable);
}

int QueryVerbs::Overdue(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto lead_stub = v1::LeadQueryService::NewStub(s.channel);
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
  return Answer(g, st, resp, PrintOverdue);
}

int QueryVerbs::Customer(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto customer_stub = v1::CustomerQueryService::NewStub(s.channel);
  v1::GetCustomerRequest req;
  if (customer_ref.rfind("ld_", 0) == 0) {
    req.set_lead_id(customer_ref);
  } else {
    req.set_customer_id(customer_ref);
  }
  v1::CustomerView c;
  grpc::Status st = customer_stub->GetCustomer(&ctx, req, &c);
  return Answer(g, st, c, PrintCustomer);
}

int QueryVerbs::Customers(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto customer_stub = v1::CustomerQueryService::NewStub(s.channel);
  v1::ListCustomersRequest req;
  req.set_account_owner(customers_owner);
  req.set_page_size(1000);
  v1::ListCustomersResponse resp;
  grpc::Status st = customer_stub->ListCustomers(&ctx, req, &resp);
  return Answer(g, st, resp, PrintCustomerTable);
}

int QueryVerbs::Events(Session& s) {
  const Global& g = s.g;
  v1::StreamEventsRequest req;
  req.set_stop_at_end(!events_follow);
  for (const std::string& text : events_from) {
    absl::StatusOr<v1::LogPosition> at = ParsePosition("--from", text);
    if (!at.ok()) return Usage(at.status());
    *req.add_from() = *at;
  }
  grpc::ClientContext stream_ctx;
  Authorize(stream_ctx, g);
  if (!events_follow) {
    stream_ctx.set_deadline(std::chrono::system_clock::now() +
                            std::chrono::seconds(g.timeout_seconds));
  }
  auto reader = v1::EventStreamService::NewStub(s.channel)->StreamEvents(&stream_ctx, req);
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

int QueryVerbs::Health(Session& s) {
  const Global& g = s.g;
  auto stub = grpc::health::v1::Health::NewStub(s.channel);
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

int QueryVerbs::Views(Session& s) {
  const Global& g = s.g;
  grpc::ClientContext& ctx = s.ctx;
  auto admin = v1::ViewAdminService::NewStub(s.channel);
  v1::ViewStatus vs;
  grpc::Status st = admin->GetViewStatus(&ctx, v1::GetViewStatusRequest(), &vs);
  return Answer(g, st, vs, PrintViewStatus);
}

}  // namespace

std::unique_ptr<VerbFlags> AddQueryVerbs(CLI::App& app, std::vector<Verb>& verbs) {
  return std::make_unique<QueryVerbs>(app, verbs);
}

}  // namespace leadflow::leadctl
