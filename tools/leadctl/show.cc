#include "tools/leadctl/show.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/common/enum_names.h"
#include "services/common/time_util.h"
#include "tools/leadctl/parse.h"
#include "tools/leadctl/report.h"

namespace leadflow::leadctl {
namespace {

std::string Short(const google::protobuf::EnumDescriptor* d, int v) { return EnumShortName(d, v); }

void Row(const std::string& k, const std::string& v) {
  std::cout << "  " << k << std::string(k.size() < 16 ? 16 - k.size() : 1, ' ') << v << "\n";
}

}  // namespace

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string DateTime(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M", common::FromProto(ts), absl::UTCTimeZone());
}

std::string Cell(const std::string& s, size_t width) {
  std::string out = s;
  if (DisplayWidth(s) > width) out = absl::StrCat(PrefixWithin(s, width - 1), "~");
  const size_t used = DisplayWidth(out);
  return out + std::string(width + 1 > used ? width + 1 - used : 1, ' ');
}

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

void PrintTimeline(const v1::LeadTimeline& t) {
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
}

void PrintOverdue(const v1::ListOverdueFollowUpsResponse& resp) {
  std::cout << Cell("DUE (UTC)", 16) << Cell("LEAD", 23) << Cell("NAME", 22) << Cell("KIND", 10)
            << "NOTE\n";
  for (const auto& o : resp.follow_ups()) {
    std::cout << Cell(DateTime(o.follow_up().due_at()), 16) << Cell(o.lead_id(), 23)
              << Cell(o.lead_name(), 22)
              << Cell(Short(v1::InteractionKind_descriptor(), o.follow_up().kind()), 10)
              << o.follow_up().note() << "\n";
  }
  std::cout << "(" << resp.follow_ups_size() << " overdue)\n";
}

void PrintCustomer(const v1::CustomerView& c) {
  std::cout << "Customer " << c.customer_id() << "  (version " << c.version() << ")"
            << (c.erased() ? "  ERASED: personal data destroyed" : "") << "\n";
  Row("from lead", c.lead_id());
  Row("person", OrDash(c.person().full_name()));
  Row("company", OrDash(c.company()));
  Row("account owner", OrDash(c.account_owner()));
  Row("converted", absl::StrCat(DateTime(c.converted_at()), " (recorded ",
                                DateTime(c.converted_recorded_at()), ")"));
  Row("deal",
      absl::StrCat(FormatMoney(c.deal_value()), c.contract_ref().empty() ? "" : ", contract ",
                   c.contract_ref(), c.invoice_ref().empty() ? "" : ", invoice ", c.invoice_ref()));
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
                                Short(v1::NpsCategory_descriptor(), c.latest_nps_category()), ", ",
                                DateTime(c.latest_nps_at()), ")")
                 : "-");
}

void PrintCustomerTable(const v1::ListCustomersResponse& resp) {
  std::cout << Cell("CUSTOMER", 23) << Cell("NAME", 22) << Cell("CONVERTED", 16) << "DEAL\n";
  for (const auto& c : resp.customers()) {
    std::cout << Cell(c.customer_id(), 23) << Cell(c.person().full_name(), 22)
              << Cell(DateTime(c.converted_at()), 16) << FormatMoney(c.deal_value()) << "\n";
  }
  std::cout << "(" << resp.customers_size() << " customers)\n";
}

void PrintViewStatus(const v1::ViewStatus& vs) {
  std::cout << Cell("VIEW", 9) << Cell("PART", 5) << Cell("APPLIED", 10) << Cell("END", 10)
            << Cell("LAG", 8) << "STATE\n";
  for (const auto& p : vs.partitions()) {
    std::cout << Cell(p.view(), 9) << Cell(absl::StrCat(p.partition()), 5)
              << Cell(absl::StrCat(p.applied_offset()), 10)
              << Cell(absl::StrCat(p.end_offset()), 10)
              << Cell(absl::StrCat(std::max<int64_t>(0, p.end_offset() - p.applied_offset())), 8)
              << p.state() << (p.error().empty() ? "" : ": ") << p.error() << "\n";
  }
}

}  // namespace leadflow::leadctl
