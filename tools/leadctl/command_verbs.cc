// leadctl's lead and customer commands (capture ... nps, erase) and `batch`: their flags, and
// the leadflow.v1.Command each one builds and executes.
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "leadflow/v1/lead_service.grpc.pb.h"
#include "services/common/commands.h"
#include "services/common/ids.h"
#include "services/common/status_util.h"
#include "tools/leadctl/client.h"
#include "tools/leadctl/parse.h"
#include "tools/leadctl/show.h"
#include "tools/leadctl/verbs.h"

namespace leadflow::leadctl {
namespace {

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

class CommandVerbs final : public VerbFlags {
 public:
  CommandVerbs(CLI::App& app, const Global& g, std::vector<Verb>& verbs);

 private:
  // Reports bad flags (exit 2); else executes the command and prints the reply.
  int Execute(Session& s, const absl::StatusOr<v1::Command>& command, const std::string& name);
  absl::Status WithMeta(v1::CommandMeta* meta) const {
    auto built = BuildMeta(m, g_);
    if (!built.ok()) return built.status();
    *meta = *built;
    return absl::OkStatus();
  }
  // `cmd` builds the body `mutable_body` of v1::Command with the shared meta flags, then
  // `fill(body)` sets the command's own fields.
  template <typename MutableBody, typename Fill>
  void Builds(CLI::App* cmd, MutableBody mutable_body, Fill fill) {
    verbs_.push_back({cmd, [this, cmd, mutable_body, fill](Session& s) {
                        v1::Command c;
                        auto* b = (c.*mutable_body)();
                        absl::Status built = WithMeta(b->mutable_meta());
                        if (built.ok()) built = fill(b);
                        if (!built.ok()) return Usage(built);
                        return Execute(s, c, cmd->get_name());
                      }});
  }

  const Global& g_;
  std::vector<Verb>& verbs_;
  MetaFlags m;
  struct {
    std::string name, email, phone, company, title, source, origin, campaign, cost, temperature,
        note;
  } cap;
  struct {
    std::string source, campaign, note, name, email, phone, company, title, owner, team, reason,
        temperature, kind, direction, outcome, notes, interaction_id, due, follow_up_id, assignee,
        budget, decision_maker, need, decision_by, stage, text, until, into, deal, contract,
        invoice, account_owner, legal_name, tax_id, registration, billing_address, amount,
        reference, description, comment;
    int64_t duration = 0;
    int score = -1;
  } f;
  struct {
    std::string lead, email, phone;
  } er;
  std::string target;
  std::string batch_file;
  size_t chunk = 1000;
};

CommandVerbs::CommandVerbs(CLI::App& app, const Global& g, std::vector<Verb>& verbs)
    : g_(g), verbs_(verbs) {
  // ---- capture ----
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
  Builds(capture, &v1::Command::mutable_capture_lead,
         [=, this](v1::CaptureLead* b) -> absl::Status {
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
           LEADFLOW_RETURN_IF_ERROR(
               SetEnum("--origin", cap.origin, v1::OriginType_descriptor(), &origin));
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

  // Commands on one lead or customer given as the first positional argument.
  auto on_lead = [&](const std::string& name, const std::string& help,
                     const std::string& what = "LEAD") {
    CLI::App* cmd = app.add_subcommand(name, help);
    cmd->add_option(what == "LEAD" ? "lead" : "customer", target,
                    what == "LEAD" ? "Lead id (ld_...)" : "Customer id (cu_...)")
        ->required();
    AddMetaFlags(cmd, &m);
    return cmd;
  };

  CLI::App* inquiry = on_lead("inquiry", "Record that a known contact came back");
  inquiry->add_option("--source", f.source, "Source channel of the inquiry");
  inquiry->add_option("--campaign", f.campaign, "Campaign");
  inquiry->add_option("--note", f.note, "What they asked");
  Builds(inquiry, &v1::Command::mutable_record_inquiry, [=, this](auto* b) -> absl::Status {
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
  Builds(update, &v1::Command::mutable_update_contact_details, [=, this](auto* b) -> absl::Status {
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
  Builds(assign, &v1::Command::mutable_assign_lead, [=, this](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_owner(f.owner);
    b->set_team(f.team);
    b->set_reason(f.reason);
    return absl::OkStatus();
  });

  CLI::App* temperature = on_lead("temperature", "Set a lead's temperature");
  temperature->add_option("value", f.temperature, "cold, warm or hot")->required();
  temperature->add_option("--reason", f.reason, "Why");
  Builds(temperature, &v1::Command::mutable_set_temperature, [=, this](auto* b) -> absl::Status {
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
  Builds(interaction, &v1::Command::mutable_log_interaction, [=, this](auto* b) -> absl::Status {
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
  Builds(follow_up, &v1::Command::mutable_schedule_follow_up, [=, this](auto* b) -> absl::Status {
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
  Builds(complete, &v1::Command::mutable_complete_follow_up, [=, this](auto* b) -> absl::Status {
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
  Builds(qualify, &v1::Command::mutable_qualify_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(stage, &v1::Command::mutable_change_stage, [=, this](auto* b) -> absl::Status {
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
  Builds(reject, &v1::Command::mutable_reject_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(postpone, &v1::Command::mutable_postpone_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(disqualify, &v1::Command::mutable_disqualify_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(reactivate, &v1::Command::mutable_reactivate_lead, [=, this](auto* b) -> absl::Status {
    b->set_lead_id(target);
    b->set_note(f.note);
    return absl::OkStatus();
  });

  CLI::App* merge = on_lead("merge", "Fold a duplicate lead into another");
  merge->add_option("--into", f.into, "Survivor lead id")->required();
  merge->add_option("--note", f.note, "Note");
  Builds(merge, &v1::Command::mutable_merge_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(convert, &v1::Command::mutable_convert_lead, [=, this](auto* b) -> absl::Status {
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
  CLI::App* erase = app.add_subcommand(
      "erase",
      "Erase a person: destroy the lead's data key, so every personal field it ever "
      "had is gone for good (status and funnel figures stay). admin only");
  erase->add_option("lead", er.lead, "Lead id (ld_...); or name it by --email or --phone");
  erase->add_option("--email", er.email, "The email of the lead to erase");
  erase->add_option("--phone", er.phone, "The phone of the lead to erase");
  AddMetaFlags(erase, &m);
  Builds(erase, &v1::Command::mutable_erase_lead, [=, this](auto* b) -> absl::Status {
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
  Builds(profile, &v1::Command::mutable_update_customer_profile,
         [=, this](auto* b) -> absl::Status {
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
  Builds(purchase, &v1::Command::mutable_record_purchase, [=, this](auto* b) -> absl::Status {
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
  Builds(nps, &v1::Command::mutable_record_nps, [=, this](auto* b) -> absl::Status {
    b->set_customer_id(target);
    b->set_score(f.score);
    b->set_comment(f.comment);
    return absl::OkStatus();
  });

  // ---- batch ----
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
  verbs_.push_back(
      {batch, [this](Session& s) { return RunBatch(s.channel, s.g, batch_file, chunk); }});
}

int CommandVerbs::Execute(Session& s, const absl::StatusOr<v1::Command>& command,
                          const std::string& name) {
  if (!command.ok()) return Usage(command.status());
  auto stub = v1::LeadCommandService::NewStub(s.channel);
  v1::CommandReply reply;
  grpc::Status st = stub->Execute(&s.ctx, *command, &reply);
  return Answer(s.g, st, reply, [&name](const v1::CommandReply& r) { PrintReply(name, r); });
}

}  // namespace

std::unique_ptr<VerbFlags> AddCommandVerbs(CLI::App& app, const Global& g,
                                           std::vector<Verb>& verbs) {
  return std::make_unique<CommandVerbs>(app, g, verbs);
}

}  // namespace leadflow::leadctl
