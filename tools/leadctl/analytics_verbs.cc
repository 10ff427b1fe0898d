// leadctl's analytics: the funnel (cohort, activity), the pipeline, and the reprocessing lists
// and summary (queue, winback, exits, exit-reasons); tables, --csv or --json (report.h).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/common/time_util.h"
#include "tools/leadctl/client.h"
#include "tools/leadctl/parse.h"
#include "tools/leadctl/report.h"
#include "tools/leadctl/verbs.h"

namespace leadflow::leadctl {
namespace {

class AnalyticsVerbs final : public VerbFlags {
 public:
  AnalyticsVerbs(CLI::App& app, std::vector<Verb>& verbs);

 private:
  int Cohort(Session& s);
  int Activity(Session& s);
  int Pipeline(Session& s);
  int Queue(Session& s);
  int WinBack(Session& s);
  int Exits(Session& s);
  int ExitReasons(Session& s);

  // --from and --to into `from` and `to`.
  absl::Status Range(google::protobuf::Timestamp* from, google::protobuf::Timestamp* to) const;
  // --as-of: the time (unset: now) and how a title says it.
  absl::StatusOr<std::pair<google::protobuf::Timestamp, std::string>> AsOf() const;
  // The reply as JSON (--json) or `text` (a table or CSV).
  static int Print(Session& s, const google::protobuf::Message& reply, const std::string& text);
  static Format FormatOf(const Session& s) { return s.g.csv ? Format::kCsv : Format::kTable; }

  std::string from, to, split, bucket = "day", kind, as_of, token;
  int within_days = 0, days = 0, limit = 0;
  CLI::App* cohort_ = nullptr;
};

AnalyticsVerbs::AnalyticsVerbs(CLI::App& app, std::vector<Verb>& verbs) {
  CLI::App* funnel = app.add_subcommand(
      "funnel", "Conversion funnel (docs/metrics.md): `funnel cohort` or `funnel activity`");
  funnel->require_subcommand(1);
  CLI::App* cohort = funnel->add_subcommand(
      "cohort", "Leads captured in [--from, --to): how many reached each milestone, how fast");
  CLI::App* activity = funnel->add_subcommand(
      "activity", "Milestones reached in [--from, --to), whatever the capture date, by bucket");
  for (CLI::App* c : {cohort, activity}) {
    c->add_option("--from", from, "Start (date or time, UTC), inclusive")->required();
    c->add_option("--to", to, "End (date or time, UTC), exclusive")->required();
    c->add_option("--split", split, "source_channel, origin_type, campaign, temperature or owner");
  }
  cohort->add_option("--within-days", within_days,
                     "Count a milestone only if reached within N days of capture");
  activity->add_option("--bucket", bucket, "day, week (ISO, Monday) or month")
      ->capture_default_str();
  CLI::App* pipeline = app.add_subcommand(
      "pipeline", "Open pipeline: QUALIFIED leads by stage, budgets and weighted value");
  pipeline->add_option("--split", split, "owner (current), source_channel, ...");
  CLI::App* queue = app.add_subcommand(
      "queue", "Re-contact queue: postponed leads whose revisit date has come, oldest first");
  CLI::App* winback = app.add_subcommand(
      "winback", "Rejected leads not contacted since, rejected more than --days ago");
  winback->add_option("--days", days, "Rejected more than N days ago")->required();
  for (CLI::App* c : {queue, winback}) {
    c->add_option("--as-of", as_of, "Instead of now (date or time)");
  }
  CLI::App* exits = app.add_subcommand(
      "exits", "Rejections, postponements and disqualifications in [--from, --to)");
  exits->add_option("--kind", kind, "rejected, postponed or disqualified");
  CLI::App* reasons = app.add_subcommand(
      "exit-reasons", "Exits in [--from, --to) by reason, with reactivations and conversions");
  for (CLI::App* c : {exits, reasons}) {
    c->add_option("--from", from, "Start (date or time, UTC), inclusive")->required();
    c->add_option("--to", to, "End (date or time, UTC), exclusive")->required();
  }
  for (CLI::App* c : {queue, winback, exits}) {
    c->add_option("--limit", limit, "Page size (1-1000, default 50)");
    c->add_option("--page-token", token, "Continue a listing");
  }
  cohort_ = cohort;
  for (auto [cmd, run] :
       std::initializer_list<std::pair<CLI::App*, int (AnalyticsVerbs::*)(Session&)>>{
           {cohort, &AnalyticsVerbs::Cohort},
           {activity, &AnalyticsVerbs::Activity},
           {pipeline, &AnalyticsVerbs::Pipeline},
           {queue, &AnalyticsVerbs::Queue},
           {winback, &AnalyticsVerbs::WinBack},
           {exits, &AnalyticsVerbs::Exits},
           {reasons, &AnalyticsVerbs::ExitReasons}}) {
    verbs.push_back({cmd, [this, run = run](Session& s) { return (this->*run)(s); }});
  }
}

absl::Status AnalyticsVerbs::Range(google::protobuf::Timestamp* f,
                                   google::protobuf::Timestamp* t) const {
  auto pf = ParseTime("--from", from);
  if (!pf.ok()) return pf.status();
  auto pt = ParseTime("--to", to);
  if (!pt.ok()) return pt.status();
  *f = *pf;
  *t = *pt;
  return absl::OkStatus();
}

absl::StatusOr<std::pair<google::protobuf::Timestamp, std::string>> AnalyticsVerbs::AsOf() const {
  if (as_of.empty()) return std::make_pair(google::protobuf::Timestamp(), std::string("now"));
  auto t = ParseTime("--as-of", as_of);
  if (!t.ok()) return t.status();
  return std::make_pair(*t, common::Rfc3339(common::FromProto(*t)));
}

int AnalyticsVerbs::Print(Session& s, const google::protobuf::Message& reply,
                          const std::string& text) {
  std::cout << (s.g.json ? Json(reply) : text);
  return 0;
}

int AnalyticsVerbs::Cohort(Session& s) {
  v1::CohortFunnelRequest req;
  if (absl::Status st = Range(req.mutable_captured_from(), req.mutable_captured_to()); !st.ok()) {
    return Usage(st);
  }
  req.set_split(split);
  if (cohort_->count("--within-days") > 0) req.set_within_days(within_days);
  v1::CohortFunnelReport resp;
  grpc::Status st = v1::FunnelQueryService::NewStub(s.channel)->GetCohortFunnel(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(s, resp, RenderCohort(resp, FormatOf(s)));
}

int AnalyticsVerbs::Activity(Session& s) {
  v1::ActivityRequest req;
  if (absl::Status st = Range(req.mutable_from(), req.mutable_to()); !st.ok()) return Usage(st);
  req.set_split(split);
  if (bucket == "day") {
    req.set_bucket(v1::ActivityRequest::BUCKET_DAY);
  } else if (bucket == "week") {
    req.set_bucket(v1::ActivityRequest::BUCKET_WEEK);
  } else if (bucket == "month") {
    req.set_bucket(v1::ActivityRequest::BUCKET_MONTH);
  } else {
    return Usage(absl::InvalidArgumentError(
        absl::StrCat("--bucket: unknown value '", bucket, "'; one of: day, week, month")));
  }
  v1::ActivityReport resp;
  grpc::Status st = v1::FunnelQueryService::NewStub(s.channel)->GetActivity(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(s, resp, RenderActivity(resp, FormatOf(s)));
}

int AnalyticsVerbs::Pipeline(Session& s) {
  v1::PipelineRequest req;
  req.set_split(split);
  v1::PipelineReport resp;
  grpc::Status st = v1::FunnelQueryService::NewStub(s.channel)->GetPipeline(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(s, resp, RenderPipeline(resp, FormatOf(s)));
}

int AnalyticsVerbs::Queue(Session& s) {
  auto when = AsOf();
  if (!when.ok()) return Usage(when.status());
  v1::RecontactQueueRequest req;
  if (!as_of.empty()) *req.mutable_as_of() = when->first;
  req.set_page_size(limit);
  req.set_page_token(token);
  v1::RecontactQueueResponse resp;
  grpc::Status st =
      v1::ReprocessingQueryService::NewStub(s.channel)->GetRecontactQueue(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(s, resp,
               RenderExits(resp.leads(), resp.next_page_token(),
                           absl::StrCat("Re-contact queue: postponed leads to call back "
                                        "(revisit date on or before ",
                                        when->second, ")"),
                           FormatOf(s)));
}

int AnalyticsVerbs::WinBack(Session& s) {
  auto when = AsOf();
  if (!when.ok()) return Usage(when.status());
  v1::WinBackRequest req;
  req.set_rejected_more_than_days(days);
  if (!as_of.empty()) *req.mutable_as_of() = when->first;
  req.set_page_size(limit);
  req.set_page_token(token);
  v1::WinBackResponse resp;
  grpc::Status st =
      v1::ReprocessingQueryService::NewStub(s.channel)->GetWinBackList(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(
      s, resp,
      RenderExits(resp.leads(), resp.next_page_token(),
                  absl::StrCat("Win-back candidates: rejected more than ", days, " days before ",
                               when->second, ", no outbound contact since"),
                  FormatOf(s)));
}

int AnalyticsVerbs::Exits(Session& s) {
  v1::ListExitsRequest req;
  if (absl::Status st = Range(req.mutable_from(), req.mutable_to()); !st.ok()) return Usage(st);
  if (!kind.empty()) {
    auto k = ParseEnum("--kind", v1::ExitKind_descriptor(), kind);
    if (!k.ok()) return Usage(k.status());
    req.set_kind(static_cast<v1::ExitKind>(*k));
  }
  req.set_page_size(limit);
  req.set_page_token(token);
  v1::ListExitsResponse resp;
  grpc::Status st = v1::ReprocessingQueryService::NewStub(s.channel)->ListExits(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(
      s, resp,
      RenderExits(resp.exits(), resp.next_page_token(),
                  absl::StrCat("Exits ", from, " .. ", to, " (oldest first)"), FormatOf(s)));
}

int AnalyticsVerbs::ExitReasons(Session& s) {
  v1::ExitSummaryRequest req;
  if (absl::Status st = Range(req.mutable_from(), req.mutable_to()); !st.ok()) return Usage(st);
  v1::ExitSummary resp;
  grpc::Status st =
      v1::ReprocessingQueryService::NewStub(s.channel)->GetExitSummary(&s.ctx, req, &resp);
  if (!st.ok()) return Fail(st, s.g);
  return Print(s, resp, RenderExitSummary(resp, FormatOf(s)));
}

}  // namespace

std::unique_ptr<VerbFlags> AddAnalyticsVerbs(CLI::App& app, std::vector<Verb>& verbs) {
  return std::make_unique<AnalyticsVerbs>(app, verbs);
}

}  // namespace leadflow::leadctl
