#include "services/lead/reducer.h"

#include <algorithm>
#include <initializer_list>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "services/common/commands.h"
#include "services/common/ids.h"
#include "services/common/money.h"
#include "services/common/status_util.h"
#include "services/common/text.h"
#include "services/common/time_util.h"

namespace leadflow::lead {
namespace {

using common::FieldError;
using common::FromProto;
using common::Rfc3339;
using common::ToProto;

// ---- Field checks ---------------------------------------------------------------------------

// Scope of error messages: the command name, e.g. "qualify_lead".
class Checker {
 public:
  explicit Checker(std::string scope) : scope_(std::move(scope)) {}
  const std::string& scope() const { return scope_; }

  absl::Status Error(absl::string_view field, absl::string_view what) const {
    return FieldError(scope_, field, what);
  }

  // Free text: fields of up to kMaxShortBytes (names, owners, refs, ids) are single lines
  // without control characters; longer ones (notes, reasons) keep line breaks and tabs.
  absl::Status Text(absl::string_view field, const std::string& value, size_t max_bytes,
                    bool required) const {
    if (required && absl::StripAsciiWhitespace(value).empty()) return Error(field, "required");
    if (value.size() > max_bytes) {
      return Error(field,
                   absl::StrCat("too long: ", value.size(), " bytes, the limit is ", max_bytes));
    }
    return common::CheckText(
        absl::StrCat(scope_, ".", field), value,
        max_bytes <= kMaxShortBytes ? common::TextKind::kSingleLine : common::TextKind::kNote);
  }

  template <typename IsValidFn>
  absl::Status Enum(absl::string_view field, int value, IsValidFn is_valid, bool required) const {
    if (!is_valid(value)) return Error(field, absl::StrCat("unknown value ", value));
    if (required && value == 0) return Error(field, "required");
    return absl::OkStatus();
  }

  // Money: `required` means it must be present; `positive` means amount must be > 0.
  absl::Status MoneyField(absl::string_view field, bool present, const v1::Money& m, bool required,
                          bool positive) const {
    if (!present) {
      return required ? Error(field, "required") : absl::OkStatus();
    }
    const std::string& c = m.currency_code();
    if (!common::IsIso4217Currency(c)) {
      return Error(absl::StrCat(field, ".currency_code"),
                   absl::StrCat(common::QuotePrefix(c, 8),
                                " is not an ISO 4217 currency code (e.g. EUR, USD, PLN)"));
    }
    if (m.amount_micros() < 0) {
      return Error(absl::StrCat(field, ".amount_micros"),
                   absl::StrCat("must not be negative (got ", m.amount_micros(), ")"));
    }
    if (m.amount_micros() > common::kMaxAmountMicros) {
      return Error(
          absl::StrCat(field, ".amount_micros"),
          absl::StrCat("more than the limit of ", common::kMaxAmountMicros,
                       " micros (one billion units) for one amount (got ", m.amount_micros(), ")"));
    }
    if (positive && m.amount_micros() == 0) {
      return Error(absl::StrCat(field, ".amount_micros"), "must be greater than zero");
    }
    return absl::OkStatus();
  }

  absl::Status Time(absl::string_view field, bool present, const google::protobuf::Timestamp& ts,
                    bool required) const {
    if (!present) return required ? Error(field, "required") : absl::OkStatus();
    if (!common::IsValidTimestamp(ts)) {
      return Error(field, absl::StrCat("invalid timestamp (seconds=", ts.seconds(),
                                       ", nanos=", ts.nanos(), ")"));
    }
    return absl::OkStatus();
  }

  absl::Status LeadId(absl::string_view field, const std::string& id) const {
    return common::CheckLeadId(absl::StrCat(scope_, ".", field), id);
  }

  absl::Status CustomerId(const std::string& id) const {
    return common::CheckCustomerId(absl::StrCat(scope_, ".customer_id"), id);
  }

 private:
  std::string scope_;
};

bool IsPrintableAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

absl::Status CheckMeta(const Checker& c, const v1::CommandMeta& meta) {
  if (meta.command_id().empty()) return c.Error("meta.command_id", "required");
  if (meta.command_id().size() > kMaxCommandIdBytes || !IsPrintableAscii(meta.command_id())) {
    return c.Error("meta.command_id", absl::StrCat("must be 1-", kMaxCommandIdBytes,
                                                   " printable ASCII characters without spaces"));
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("meta.correlation_id", meta.correlation_id(), kMaxShortBytes,
                                  /*required=*/false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Enum("meta.actor.kind", meta.actor().kind(), v1::Actor::Kind_IsValid, /*required=*/false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Text("meta.actor.id", meta.actor().id(), kMaxShortBytes, /*required=*/true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("meta.actor.on_behalf_of", meta.actor().on_behalf_of(),
                                  kMaxShortBytes, /*required=*/false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Time("meta.occurred_at", meta.has_occurred_at(), meta.occurred_at(), false));
  if (meta.has_expected_version() && meta.expected_version() < 0) {
    return c.Error("meta.expected_version", "must not be negative");
  }
  return absl::OkStatus();
}

absl::Time OccurredAt(const v1::CommandMeta& meta, const DecideContext& ctx) {
  return meta.has_occurred_at() ? FromProto(meta.occurred_at()) : ctx.now;
}

// ---- Lifecycle checks -----------------------------------------------------------------------

std::string StatusList(std::initializer_list<v1::LeadStatus> statuses) {
  std::vector<std::string> names;
  for (auto s : statuses) names.push_back(StatusName(s));
  if (names.size() == 1) return names[0];
  std::string last = names.back();
  names.pop_back();
  return absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
}

absl::Status RequireExists(const Checker& c, const LeadState& lead, const std::string& lead_id) {
  if (!lead.exists)
    return absl::NotFoundError(absl::StrCat(c.scope(), ": lead ", lead_id, " not found"));
  return absl::OkStatus();
}

absl::Status CheckExpectedVersion(const Checker& c, const v1::CommandMeta& meta,
                                  absl::string_view what, const std::string& id, int64_t version) {
  if (meta.has_expected_version() && meta.expected_version() != version) {
    absl::Status st =
        absl::AbortedError(absl::StrCat(c.scope(), ": expected version ", meta.expected_version(),
                                        " but ", what, " ", id, " is at version ", version));
    v1::VersionConflict conflict;
    conflict.set_aggregate_id(id);
    conflict.set_expected_version(meta.expected_version());
    conflict.set_current_version(version);
    st.SetPayload(kVersionConflictTypeUrl, absl::Cord(conflict.SerializeAsString()));
    return st;
  }
  return absl::OkStatus();
}

absl::Status RefuseTerminal(const Checker& c, const LeadState& lead) {
  if (lead.status == v1::LEAD_STATUS_CONVERTED) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.scope(), ": lead ", lead.lead_id,
        " is CONVERTED, a terminal status; record later business on customer ", lead.customer_id));
  }
  if (lead.status == v1::LEAD_STATUS_MERGED) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.scope(), ": lead ", lead.lead_id,
                     " is MERGED, a terminal status; it was folded into lead ", lead.merged_into));
  }
  return absl::OkStatus();
}

absl::Status RequireStatus(const Checker& c, const LeadState& lead, absl::string_view action,
                           std::initializer_list<v1::LeadStatus> allowed) {
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, lead));
  if (std::find(allowed.begin(), allowed.end(), lead.status) == allowed.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.scope(), ": lead ", lead.lead_id, " is ", StatusName(lead.status), "; ",
                     action, " is allowed only from ", StatusList(allowed)));
  }
  return absl::OkStatus();
}

absl::Status CheckNotTooFarAhead(const Checker& c, absl::Time occurred, absl::Time now) {
  if (occurred > now + kMaxFutureSkew) {
    return c.Error(
        "meta.occurred_at",
        absl::StrCat(Rfc3339(occurred), " is more than 5 minutes ahead of the server clock (",
                     Rfc3339(now), ")"));
  }
  return absl::OkStatus();
}

// Time rules of design §3 for an event on an existing lead.
absl::Status CheckLeadTime(const Checker& c, const LeadState& lead, absl::Time occurred,
                           absl::Time now, bool changes_status) {
  LEADFLOW_RETURN_IF_ERROR(CheckNotTooFarAhead(c, occurred, now));
  if (occurred < lead.captured_at) {
    return c.Error("meta.occurred_at",
                   absl::StrCat(Rfc3339(occurred), " is before the lead was captured (",
                                Rfc3339(lead.captured_at), ")"));
  }
  if (changes_status && occurred < lead.status_changed_at) {
    return c.Error("meta.occurred_at",
                   absl::StrCat(Rfc3339(occurred), " is before ", Rfc3339(lead.status_changed_at),
                                ", when the lead became ", StatusName(lead.status),
                                "; a status change cannot go back in business time"));
  }
  return absl::OkStatus();
}

absl::Status CheckCustomerTime(const Checker& c, const CustomerState& customer, absl::Time occurred,
                               absl::Time now) {
  LEADFLOW_RETURN_IF_ERROR(CheckNotTooFarAhead(c, occurred, now));
  if (occurred < customer.converted_at) {
    return c.Error("meta.occurred_at",
                   absl::StrCat(Rfc3339(occurred), " is before the customer was created (",
                                Rfc3339(customer.converted_at), ")"));
  }
  return absl::OkStatus();
}

// ---- Event construction ---------------------------------------------------------------------

// Events are made on the decision's arena (DecideOnArena): one block allocation for the
// messages of a commit group instead of one heap allocation per message and string.
v1::Event* NewEvent(google::protobuf::Arena* arena, const v1::CommandMeta& meta,
                    absl::Time occurred, v1::AggregateType type, const std::string& aggregate_id,
                    int64_t version, const std::string& partition_key) {
  v1::Event* event = google::protobuf::Arena::CreateMessage<v1::Event>(arena);
  v1::Event& e = *event;
  e.set_schema_version(kCurrentSchemaVersion);
  e.set_aggregate_type(type);
  e.set_aggregate_id(aggregate_id);
  e.set_aggregate_version(version);
  e.set_partition_key(partition_key);
  *e.mutable_occurred_at() = ToProto(occurred);
  *e.mutable_actor() = meta.actor();
  e.set_command_id(meta.command_id());
  e.set_correlation_id(meta.correlation_id());
  return event;
}

v1::Event* NextLeadEvent(google::protobuf::Arena* arena, const v1::CommandMeta& meta,
                         absl::Time occurred, const LeadState& lead) {
  return NewEvent(arena, meta, occurred, v1::AGGREGATE_TYPE_LEAD, lead.lead_id, lead.version + 1,
                  lead.lead_id);
}

v1::Event* NextCustomerEvent(google::protobuf::Arena* arena, const v1::CommandMeta& meta,
                             absl::Time occurred, const CustomerState& customer) {
  return NewEvent(arena, meta, occurred, v1::AGGREGATE_TYPE_CUSTOMER, customer.customer_id,
                  customer.version + 1, customer.lead_id);
}

v1::OriginType DefaultOrigin(v1::SourceChannel channel) {
  switch (channel) {
    case v1::SOURCE_CHANNEL_REFERRAL:
      return v1::ORIGIN_TYPE_SEED;
    case v1::SOURCE_CHANNEL_COLD_CALL:
    case v1::SOURCE_CHANNEL_EVENT:
      return v1::ORIGIN_TYPE_SPEAR;
    default:
      return v1::ORIGIN_TYPE_NET;
  }
}

v1::NpsCategory NpsCategoryFor(int score) {
  if (score <= 6) return v1::NPS_CATEGORY_DETRACTOR;
  if (score <= 8) return v1::NPS_CATEGORY_PASSIVE;
  return v1::NPS_CATEGORY_PROMOTER;
}

using Events = std::vector<v1::Event*>;  // on the decision's arena

Events Emit(v1::Event* e) { return Events{e}; }
Events Emit(v1::Event* first, v1::Event* second) { return Events{first, second}; }

// An inquiry from a known contact: recorded on the customer if the lead converted before the
// inquiry's business time, else on the lead (in any status, even MERGED, so an inbound request
// is never lost; the reply names the survivor).
absl::StatusOr<Events> DecideInquiry(google::protobuf::Arena* arena, const Checker& c,
                                     const LeadState& lead, const CustomerState& customer,
                                     const v1::CommandMeta& meta, absl::Time occurred,
                                     absl::Time now, v1::InquiryReceived inquiry) {
  // An inquiry from before the conversion (a web form imported late) belongs to the lead's
  // history: it changes no status, so any business time after the capture is fine.
  if (lead.status == v1::LEAD_STATUS_CONVERTED && customer.exists &&
      occurred >= customer.converted_at) {
    LEADFLOW_RETURN_IF_ERROR(CheckCustomerTime(c, customer, occurred, now));
    inquiry.set_notify_owner(customer.account_owner);
    v1::Event& e = *NextCustomerEvent(arena, meta, occurred, customer);
    *e.mutable_inquiry_received() = std::move(inquiry);
    return Emit(&e);
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, lead, occurred, now, /*changes_status=*/false));
  inquiry.set_notify_owner(lead.owner);
  v1::Event& e = *NextLeadEvent(arena, meta, occurred, lead);
  *e.mutable_inquiry_received() = std::move(inquiry);
  return Emit(&e);
}

// ---- One function per command ----------------------------------------------------------------

struct Input {
  const Checker& c;
  const LeadState& lead;
  const CustomerState& customer;
  const DecideContext& ctx;
  const v1::CommandMeta& meta;
  absl::Time occurred;
  google::protobuf::Arena* arena;  // where the events are made
};

// Common prologue of commands on an existing lead: fields already checked by the caller.
absl::Status ExistingLead(const Input& in, const std::string& lead_id) {
  LEADFLOW_RETURN_IF_ERROR(RequireExists(in.c, in.lead, lead_id));
  return CheckExpectedVersion(in.c, in.meta, "lead", in.lead.lead_id, in.lead.version);
}

absl::StatusOr<Events> Capture(const Input& in, const v1::CaptureLead& cmd,
                               const CommandTarget& target) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(
      c.Text("person.full_name", cmd.person().full_name(), kMaxShortBytes, /*required=*/false));
  if (absl::StripAsciiWhitespace(cmd.person().full_name()).empty()) {
    return c.Error("person.full_name",
                   "required: a lead is a specific person (a company name alone is not a lead)");
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("company", cmd.company(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("title", cmd.title(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Enum("source_channel", cmd.source_channel(), v1::SourceChannel_IsValid, /*required=*/true));
  LEADFLOW_RETURN_IF_ERROR(c.Enum("origin_type", cmd.origin_type(), v1::OriginType_IsValid, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("campaign", cmd.campaign(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.MoneyField("acquisition_cost", cmd.has_acquisition_cost(),
                                        cmd.acquisition_cost(), false, false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Enum("temperature", cmd.temperature(), v1::Temperature_IsValid, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("interest_note", cmd.interest_note(), kMaxNoteBytes, false));

  // ResolveTarget validated and normalized the contact.
  const std::string& email = target.email;
  const std::string& phone = target.phone;

  if (in.lead.exists) {
    LEADFLOW_RETURN_IF_ERROR(
        CheckExpectedVersion(c, in.meta, "lead", in.lead.lead_id, in.lead.version));
    v1::InquiryReceived inquiry;
    inquiry.set_source_channel(cmd.source_channel());
    inquiry.set_campaign(cmd.campaign());
    inquiry.set_note(cmd.interest_note());
    inquiry.set_email(email);
    inquiry.set_phone(phone);
    return DecideInquiry(in.arena, c, in.lead, in.customer, in.meta, in.occurred, in.ctx.now,
                         std::move(inquiry));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckExpectedVersion(c, in.meta, "lead", target.lead_id, 0));
  LEADFLOW_RETURN_IF_ERROR(CheckNotTooFarAhead(c, in.occurred, in.ctx.now));

  LeadState fresh;
  fresh.lead_id = target.lead_id;
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, fresh);
  v1::LeadCaptured* b = e.mutable_lead_captured();
  b->mutable_person()->set_full_name(
      std::string(absl::StripAsciiWhitespace(cmd.person().full_name())));
  b->set_company(cmd.company());
  b->set_title(cmd.title());
  b->set_email(email);
  b->set_phone(phone);
  b->set_source_channel(cmd.source_channel());
  b->set_origin_type(cmd.origin_type() != v1::ORIGIN_TYPE_UNSPECIFIED
                         ? cmd.origin_type()
                         : DefaultOrigin(cmd.source_channel()));
  b->set_campaign(cmd.campaign());
  if (cmd.has_acquisition_cost()) *b->mutable_acquisition_cost() = cmd.acquisition_cost();
  b->set_temperature(cmd.temperature());
  b->set_interest_note(cmd.interest_note());
  b->set_id_scheme(common::LeadIdScheme::kVersion);
  return Emit(&e);
}

absl::StatusOr<Events> Inquiry(const Input& in, const v1::RecordInquiry& cmd) {
  LEADFLOW_RETURN_IF_ERROR(
      in.c.Enum("source_channel", cmd.source_channel(), v1::SourceChannel_IsValid, false));
  LEADFLOW_RETURN_IF_ERROR(in.c.Text("campaign", cmd.campaign(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(in.c.Text("note", cmd.note(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  v1::InquiryReceived inquiry;
  inquiry.set_source_channel(cmd.source_channel());
  inquiry.set_campaign(cmd.campaign());
  inquiry.set_note(cmd.note());
  return DecideInquiry(in.arena, in.c, in.lead, in.customer, in.meta, in.occurred, in.ctx.now,
                       std::move(inquiry));
}

absl::StatusOr<Events> UpdateContact(const Input& in, const v1::UpdateContactDetails& cmd) {
  const Checker& c = in.c;
  if (!cmd.has_full_name() && !cmd.has_company() && !cmd.has_title() && !cmd.has_email() &&
      !cmd.has_phone()) {
    return c.Error("full_name",
                   "nothing to update: set at least one of full_name, company, "
                   "title, email, phone");
  }
  std::string email, phone;
  if (cmd.has_full_name()) {
    LEADFLOW_RETURN_IF_ERROR(c.Text("full_name", cmd.full_name(), kMaxShortBytes, true));
  }
  if (cmd.has_company()) {
    LEADFLOW_RETURN_IF_ERROR(c.Text("company", cmd.company(), kMaxShortBytes, false));
  }
  if (cmd.has_title()) {
    LEADFLOW_RETURN_IF_ERROR(c.Text("title", cmd.title(), kMaxShortBytes, false));
  }
  if (cmd.has_email() && !cmd.email().empty()) {
    auto n = common::NormalizeEmail(cmd.email());
    if (!n.ok()) return c.Error("email", n.status().message());
    email = *n;
  }
  if (cmd.has_phone() && !cmd.phone().empty()) {
    auto n = common::NormalizePhone(
        cmd.phone(), in.ctx.identity != nullptr ? in.ctx.identity->phone_region : "");
    if (!n.ok()) return c.Error("phone", n.status().message());
    phone = *n;
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  // One contact, one live lead (contacts.h): the error names the other lead, never the contact.
  if (in.ctx.contacts != nullptr) {
    for (const auto& [field, key] :
         {std::pair<const char*, std::string>{"email", email.empty() ? "" : EmailKey(email)},
          std::pair<const char*, std::string>{"phone", phone.empty() ? "" : PhoneKey(phone)}}) {
      if (key.empty()) continue;
      if (auto other = in.ctx.contacts->LiveHolderOtherThan(key, common::LeadId(in.lead.lead_id))) {
        return absl::AlreadyExistsError(absl::StrCat(
            c.scope(), ".", field, ": this ", field, " belongs to lead ", *other,
            "; a contact identifies one lead (merge the two leads if they are one person)"));
      }
    }
  }
  const std::string& new_email = cmd.has_email() ? email : in.lead.email;
  const std::string& new_phone = cmd.has_phone() ? phone : in.lead.phone;
  if (new_email.empty() && new_phone.empty()) {
    return c.Error(cmd.has_email() ? "email" : "phone",
                   "a lead must keep a personal channel: email or phone");
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::ContactDetailsUpdated* b = e.mutable_contact_details_updated();
  if (cmd.has_full_name()) {
    b->mutable_person()->set_full_name(std::string(absl::StripAsciiWhitespace(cmd.full_name())));
    b->add_changed("person");
  }
  if (cmd.has_company()) {
    b->set_company(cmd.company());
    b->add_changed("company");
  }
  if (cmd.has_title()) {
    b->set_title(cmd.title());
    b->add_changed("title");
  }
  if (cmd.has_email()) {
    b->set_email(email);
    b->add_changed("email");
  }
  if (cmd.has_phone()) {
    b->set_phone(phone);
    b->add_changed("phone");
  }
  return Emit(&e);
}

absl::StatusOr<Events> Assign(const Input& in, const v1::AssignLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Text("owner", cmd.owner(), kMaxShortBytes, true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("team", cmd.team(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("reason", cmd.reason(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  if (cmd.owner() == in.lead.owner && cmd.team() == in.lead.team) {
    return absl::FailedPreconditionError(absl::StrCat(c.scope(), ": lead ", in.lead.lead_id,
                                                      " is already assigned to ",
                                                      common::QuotePrefix(cmd.owner(), 32)));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::LeadAssigned* b = e.mutable_lead_assigned();
  b->set_owner(cmd.owner());
  b->set_team(cmd.team());
  b->set_reason(cmd.reason());
  b->set_previous_owner(in.lead.owner);
  return Emit(&e);
}

absl::StatusOr<Events> Temperature(const Input& in, const v1::SetTemperature& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Enum("temperature", cmd.temperature(), v1::Temperature_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("reason", cmd.reason(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  if (cmd.temperature() == in.lead.temperature) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.scope(), ": lead ", in.lead.lead_id, " is already ",
                     v1::Temperature_Name(cmd.temperature()).substr(12)));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::TemperatureSet* b = e.mutable_temperature_set();
  b->set_temperature(cmd.temperature());
  b->set_previous(in.lead.temperature);
  b->set_reason(cmd.reason());
  return Emit(&e);
}

absl::StatusOr<Events> Interaction(const Input& in, const v1::LogInteraction& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Enum("kind", cmd.kind(), v1::InteractionKind_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(c.Enum("direction", cmd.direction(), v1::Direction_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(c.Enum("outcome", cmd.outcome(), v1::Outcome_IsValid, false));
  if (cmd.duration_seconds() < 0) return c.Error("duration_seconds", "must not be negative");
  if (cmd.duration_seconds() > int64_t{24} * 3600) {
    return c.Error("duration_seconds", "longer than 24 hours; log separate interactions");
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("notes", cmd.notes(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("interaction_id", cmd.interaction_id(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  const bool contacts =
      in.lead.status == v1::LEAD_STATUS_NEW && cmd.direction() == v1::DIRECTION_OUTBOUND;
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, contacts));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::InteractionLogged* b = e.mutable_interaction_logged();
  b->set_kind(cmd.kind());
  b->set_direction(cmd.direction());
  b->set_outcome(cmd.outcome());
  b->set_duration_seconds(cmd.duration_seconds());
  b->set_notes(cmd.notes());
  b->set_interaction_id(cmd.interaction_id().empty() ? in.meta.command_id() : cmd.interaction_id());
  return Emit(&e);
}

absl::StatusOr<Events> ScheduleFollowUp(const Input& in, const v1::ScheduleFollowUp& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Text("follow_up_id", cmd.follow_up_id(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Time("due_at", cmd.has_due_at(), cmd.due_at(), true));
  LEADFLOW_RETURN_IF_ERROR(c.Enum("kind", cmd.kind(), v1::InteractionKind_IsValid, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("note", cmd.note(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("assignee", cmd.assignee(), kMaxShortBytes, false));
  absl::Time due = FromProto(cmd.due_at());
  if (due < in.occurred) {
    return c.Error("due_at", absl::StrCat(Rfc3339(due), " is before the command's occurred_at (",
                                          Rfc3339(in.occurred), ")"));
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  const std::string id = cmd.follow_up_id().empty() ? in.meta.command_id() : cmd.follow_up_id();
  if (in.lead.open_follow_ups.contains(id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.scope(), ": follow-up ", common::QuotePrefix(id, 32),
                     " is already scheduled on lead ", in.lead.lead_id));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::FollowUpScheduled* b = e.mutable_follow_up_scheduled();
  b->set_follow_up_id(id);
  *b->mutable_due_at() = cmd.due_at();
  b->set_kind(cmd.kind());
  b->set_note(cmd.note());
  b->set_assignee(cmd.assignee().empty() ? in.lead.owner : cmd.assignee());
  return Emit(&e);
}

absl::StatusOr<Events> CompleteFollowUp(const Input& in, const v1::CompleteFollowUp& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Text("follow_up_id", cmd.follow_up_id(), kMaxShortBytes, true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("note", cmd.note(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  if (!in.lead.open_follow_ups.contains(cmd.follow_up_id())) {
    return absl::FailedPreconditionError(absl::StrCat(c.scope(), ": lead ", in.lead.lead_id,
                                                      " has no open follow-up ",
                                                      common::QuotePrefix(cmd.follow_up_id(), 32)));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  e.mutable_follow_up_completed()->set_follow_up_id(cmd.follow_up_id());
  e.mutable_follow_up_completed()->set_note(cmd.note());
  return Emit(&e);
}

absl::StatusOr<Events> Qualify(const Input& in, const v1::QualifyLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.MoneyField("budget", cmd.has_budget(), cmd.budget(), true, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("decision_maker", cmd.decision_maker(), kMaxShortBytes, true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("need", cmd.need(), kMaxNoteBytes, true));
  LEADFLOW_RETURN_IF_ERROR(c.Time("expected_decision_at", cmd.has_expected_decision_at(),
                                  cmd.expected_decision_at(), true));
  LEADFLOW_RETURN_IF_ERROR(c.Enum("stage", cmd.stage(), v1::SalesStage_IsValid, false));
  if (FromProto(cmd.expected_decision_at()) < in.occurred) {
    return c.Error("expected_decision_at",
                   absl::StrCat(Rfc3339(FromProto(cmd.expected_decision_at())),
                                " is before the qualification (", Rfc3339(in.occurred), ")"));
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(
      RequireStatus(c, in.lead, "qualify", {v1::LEAD_STATUS_NEW, v1::LEAD_STATUS_CONTACTED}));
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::LeadQualified* b = e.mutable_lead_qualified();
  *b->mutable_budget() = cmd.budget();
  b->set_decision_maker(cmd.decision_maker());
  b->set_need(cmd.need());
  *b->mutable_expected_decision_at() = cmd.expected_decision_at();
  b->set_stage(cmd.stage() == v1::SALES_STAGE_UNSPECIFIED ? v1::SALES_STAGE_QUALIFICATION
                                                          : cmd.stage());
  return Emit(&e);
}

absl::StatusOr<Events> Stage(const Input& in, const v1::ChangeStage& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Enum("stage", cmd.stage(), v1::SalesStage_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(
      RequireStatus(c, in.lead, "a stage change", {v1::LEAD_STATUS_QUALIFIED}));
  if (cmd.stage() == in.lead.stage) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.scope(), ": lead ", in.lead.lead_id, " is already in stage ", StageName(cmd.stage())));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, false));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  e.mutable_stage_changed()->set_stage(cmd.stage());
  e.mutable_stage_changed()->set_previous(in.lead.stage);
  return Emit(&e);
}

constexpr std::initializer_list<v1::LeadStatus> kOpenStatuses = {
    v1::LEAD_STATUS_NEW, v1::LEAD_STATUS_CONTACTED, v1::LEAD_STATUS_QUALIFIED};

absl::StatusOr<Events> Reject(const Input& in, const v1::RejectLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Enum("reason", cmd.reason(), v1::RejectionReason_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(
      c.Text("text", cmd.text(), kMaxNoteBytes, cmd.reason() == v1::REJECTION_REASON_OTHER));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RequireStatus(c, in.lead, "reject", kOpenStatuses));
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  e.mutable_lead_rejected()->set_reason(cmd.reason());
  e.mutable_lead_rejected()->set_text(cmd.text());
  return Emit(&e);
}

absl::StatusOr<Events> Postpone(const Input& in, const v1::PostponeLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Time("revisit_at", cmd.has_revisit_at(), cmd.revisit_at(), true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("reason", cmd.reason(), kMaxNoteBytes, false));
  absl::Time revisit = FromProto(cmd.revisit_at());
  if (revisit <= in.occurred) {
    return c.Error("revisit_at",
                   absl::StrCat(Rfc3339(revisit), " must be after the postponement itself (",
                                Rfc3339(in.occurred), ")"));
  }
  if (revisit > in.occurred + kMaxPostponement) {
    return c.Error("revisit_at",
                   absl::StrCat(Rfc3339(revisit), " is more than 10 years after the postponement (",
                                Rfc3339(in.occurred), "); reject or disqualify the lead instead"));
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RequireStatus(c, in.lead, "postpone", kOpenStatuses));
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  *e.mutable_lead_postponed()->mutable_revisit_at() = cmd.revisit_at();
  e.mutable_lead_postponed()->set_reason(cmd.reason());
  return Emit(&e);
}

absl::StatusOr<Events> Disqualify(const Input& in, const v1::DisqualifyLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(
      c.Enum("reason", cmd.reason(), v1::DisqualificationReason_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(
      c.Text("text", cmd.text(), kMaxNoteBytes, cmd.reason() == v1::DISQUALIFICATION_REASON_OTHER));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(
      RequireStatus(c, in.lead, "disqualify", {v1::LEAD_STATUS_NEW, v1::LEAD_STATUS_CONTACTED}));
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  e.mutable_lead_disqualified()->set_reason(cmd.reason());
  e.mutable_lead_disqualified()->set_text(cmd.text());
  return Emit(&e);
}

absl::StatusOr<Events> Reactivate(const Input& in, const v1::ReactivateLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Text("note", cmd.note(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RequireStatus(
      c, in.lead, "reactivate",
      {v1::LEAD_STATUS_REJECTED, v1::LEAD_STATUS_POSTPONED, v1::LEAD_STATUS_DISQUALIFIED}));
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::LeadReactivated* b = e.mutable_lead_reactivated();
  b->set_restored_status(in.lead.status_before_exit);
  b->set_restored_stage(in.lead.stage_before_exit);
  b->set_exited_from(in.lead.status);
  b->set_note(cmd.note());
  return Emit(&e);
}

absl::StatusOr<Events> Merge(const Input& in, const v1::MergeLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.LeadId("survivor_lead_id", cmd.survivor_lead_id()));
  if (cmd.survivor_lead_id() == cmd.lead_id()) {
    return c.Error("survivor_lead_id", "a lead cannot be merged into itself");
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("note", cmd.note(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RefuseTerminal(c, in.lead));
  const LeadState* survivor = in.ctx.merge_survivor;
  if (survivor == nullptr || !survivor->exists) {
    return absl::NotFoundError(
        absl::StrCat(c.scope(), ": survivor lead ", cmd.survivor_lead_id(), " not found"));
  }
  if (survivor->status == v1::LEAD_STATUS_MERGED) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.scope(), ": survivor lead ", cmd.survivor_lead_id(), " is itself MERGED (into ",
        survivor->merged_into, "); merge into that lead instead"));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));
  v1::Event& e = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  e.mutable_lead_merged()->set_survivor_lead_id(cmd.survivor_lead_id());
  e.mutable_lead_merged()->set_note(cmd.note());
  return Emit(&e);
}

absl::StatusOr<Events> Convert(const Input& in, const v1::ConvertLead& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(
      c.MoneyField("deal_value", cmd.has_deal_value(), cmd.deal_value(), true, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("contract_ref", cmd.contract_ref(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("invoice_ref", cmd.invoice_ref(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("account_owner", cmd.account_owner(), kMaxShortBytes, false));
  if (cmd.contract_ref().empty() && cmd.invoice_ref().empty()) {
    return c.Error("contract_ref",
                   "a conversion needs a signed contract or an invoice: set contract_ref or "
                   "invoice_ref");
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, cmd.lead_id()));
  LEADFLOW_RETURN_IF_ERROR(RequireStatus(c, in.lead, "convert", {v1::LEAD_STATUS_QUALIFIED}));
  const std::string account_owner =
      cmd.account_owner().empty() ? in.lead.owner : cmd.account_owner();
  if (account_owner.empty()) {
    return c.Error("account_owner", "required: the lead has no owner to inherit");
  }
  LEADFLOW_RETURN_IF_ERROR(CheckLeadTime(c, in.lead, in.occurred, in.ctx.now, true));

  const std::string customer_id =
      common::CustomerIdForLead(common::LeadId(in.lead.lead_id)).value();
  v1::Event& converted = *NextLeadEvent(in.arena, in.meta, in.occurred, in.lead);
  v1::LeadConverted* b = converted.mutable_lead_converted();
  b->set_customer_id(customer_id);
  *b->mutable_deal_value() = cmd.deal_value();
  b->set_contract_ref(cmd.contract_ref());
  b->set_invoice_ref(cmd.invoice_ref());
  b->set_account_owner(account_owner);

  CustomerState fresh;
  fresh.customer_id = customer_id;
  fresh.lead_id = in.lead.lead_id;
  v1::Event& created = *NextCustomerEvent(in.arena, in.meta, in.occurred, fresh);
  v1::CustomerCreated* cc = created.mutable_customer_created();
  cc->set_lead_id(in.lead.lead_id);
  cc->mutable_person()->set_full_name(in.lead.full_name);
  cc->set_company(in.lead.company);
  cc->set_email(in.lead.email);
  cc->set_phone(in.lead.phone);
  *cc->mutable_deal_value() = cmd.deal_value();
  cc->set_contract_ref(cmd.contract_ref());
  cc->set_invoice_ref(cmd.invoice_ref());
  cc->set_account_owner(account_owner);
  *cc->mutable_converted_at() = ToProto(in.occurred);
  return Emit(&converted, &created);
}

// Erasure (docs/security.md): records LeadErased; the writer destroys the data key in the same
// append. Idempotent: an erased lead gives no events (OK, nothing written).
absl::StatusOr<Events> Erase(const Input& in, const v1::EraseLead& cmd,
                             const std::string& lead_id) {
  (void)cmd;
  LEADFLOW_RETURN_IF_ERROR(ExistingLead(in, lead_id));
  if (in.lead.erased) return Events{};
  v1::Event* e =
      NextLeadEvent(in.arena, in.meta, std::max(in.occurred, in.lead.captured_at), in.lead);
  e->mutable_lead_erased();
  return Emit(e);
}

absl::Status ExistingCustomer(const Input& in, const std::string& customer_id) {
  if (!in.customer.exists) {
    return absl::NotFoundError(
        absl::StrCat(in.c.scope(), ": customer ", customer_id, " not found"));
  }
  LEADFLOW_RETURN_IF_ERROR(CheckExpectedVersion(in.c, in.meta, "customer", in.customer.customer_id,
                                                in.customer.version));
  return CheckCustomerTime(in.c, in.customer, in.occurred, in.ctx.now);
}

absl::StatusOr<Events> UpdateProfile(const Input& in, const v1::UpdateCustomerProfile& cmd) {
  const Checker& c = in.c;
  if (!cmd.has_legal_name() && !cmd.has_tax_id() && !cmd.has_registration_number() &&
      !cmd.has_billing_address() && !cmd.has_account_owner()) {
    return c.Error("legal_name",
                   "nothing to update: set at least one of legal_name, tax_id, "
                   "registration_number, billing_address, account_owner");
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("legal_name", cmd.legal_name(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("tax_id", cmd.tax_id(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(
      c.Text("registration_number", cmd.registration_number(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("billing_address", cmd.billing_address(), kMaxNoteBytes, false));
  if (cmd.has_account_owner()) {
    LEADFLOW_RETURN_IF_ERROR(c.Text("account_owner", cmd.account_owner(), kMaxShortBytes, true));
  }
  LEADFLOW_RETURN_IF_ERROR(ExistingCustomer(in, cmd.customer_id()));
  v1::Event& e = *NextCustomerEvent(in.arena, in.meta, in.occurred, in.customer);
  v1::CustomerProfileUpdated* b = e.mutable_customer_profile_updated();
  if (cmd.has_legal_name()) b->set_legal_name(cmd.legal_name()), b->add_changed("legal_name");
  if (cmd.has_tax_id()) b->set_tax_id(cmd.tax_id()), b->add_changed("tax_id");
  if (cmd.has_registration_number()) {
    b->set_registration_number(cmd.registration_number());
    b->add_changed("registration_number");
  }
  if (cmd.has_billing_address()) {
    b->set_billing_address(cmd.billing_address());
    b->add_changed("billing_address");
  }
  if (cmd.has_account_owner()) {
    b->set_account_owner(cmd.account_owner());
    b->add_changed("account_owner");
  }
  return Emit(&e);
}

absl::StatusOr<Events> Purchase(const Input& in, const v1::RecordPurchase& cmd) {
  const Checker& c = in.c;
  LEADFLOW_RETURN_IF_ERROR(c.Enum("kind", cmd.kind(), v1::PurchaseKind_IsValid, true));
  LEADFLOW_RETURN_IF_ERROR(c.MoneyField("amount", cmd.has_amount(), cmd.amount(), true, true));
  LEADFLOW_RETURN_IF_ERROR(c.Text("reference", cmd.reference(), kMaxShortBytes, false));
  LEADFLOW_RETURN_IF_ERROR(c.Text("description", cmd.description(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingCustomer(in, cmd.customer_id()));
  if (cmd.kind() == v1::PURCHASE_KIND_FIRST && in.customer.purchase_count > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(c.scope(), ": customer ", in.customer.customer_id, " already has ",
                     in.customer.purchase_count,
                     " purchase(s); record REPEAT, UPSELL or CROSS_SELL instead of FIRST"));
  }
  v1::Event& e = *NextCustomerEvent(in.arena, in.meta, in.occurred, in.customer);
  v1::PurchaseRecorded* b = e.mutable_purchase_recorded();
  b->set_kind(cmd.kind());
  *b->mutable_amount() = cmd.amount();
  b->set_reference(cmd.reference());
  b->set_description(cmd.description());
  return Emit(&e);
}

absl::StatusOr<Events> Nps(const Input& in, const v1::RecordNps& cmd) {
  const Checker& c = in.c;
  if (cmd.score() < 0 || cmd.score() > 10) {
    return c.Error("score", absl::StrCat("must be 0 to 10 (got ", cmd.score(), ")"));
  }
  LEADFLOW_RETURN_IF_ERROR(c.Text("comment", cmd.comment(), kMaxNoteBytes, false));
  LEADFLOW_RETURN_IF_ERROR(ExistingCustomer(in, cmd.customer_id()));
  v1::Event& e = *NextCustomerEvent(in.arena, in.meta, in.occurred, in.customer);
  e.mutable_nps_recorded()->set_score(cmd.score());
  e.mutable_nps_recorded()->set_category(NpsCategoryFor(cmd.score()));
  e.mutable_nps_recorded()->set_comment(cmd.comment());
  return Emit(&e);
}

}  // namespace

absl::StatusOr<CommandTarget> ResolveTarget(const v1::Command& command, const Identity& identity) {
  Checker c(CommandName(command));
  const google::protobuf::Message* body = BodyOf(command);
  if (body == nullptr) return absl::InvalidArgumentError("command.body: no command set");

  if (command.has_capture_lead()) {
    const v1::CaptureLead& cmd = command.capture_lead();
    std::string email, phone;
    if (!cmd.email().empty()) {
      auto n = common::NormalizeEmail(cmd.email());
      if (!n.ok()) return c.Error("email", n.status().message());
      email = *n;
    }
    if (!cmd.phone().empty()) {
      auto n = common::NormalizePhone(cmd.phone(), identity.phone_region);
      if (!n.ok()) return c.Error("phone", n.status().message());
      phone = *n;
    }
    if (email.empty() && phone.empty()) {
      return c.Error("email",
                     "a lead needs a personal channel: set email or phone (a company "
                     "switchboard alone is not a lead)");
    }
    if (identity.ids == nullptr) {
      return absl::FailedPreconditionError("capture_lead: no lead id scheme configured");
    }
    std::string lead_id =
        !email.empty() ? identity.ids->ForEmail(email) : identity.ids->ForPhone(phone);
    return CommandTarget{.lead_id = std::move(lead_id),
                         .customer_id = "",
                         .email = std::move(email),
                         .phone = std::move(phone)};
  }

  if (command.has_erase_lead()) {
    const v1::EraseLead& cmd = command.erase_lead();
    const int named = !cmd.lead_id().empty() + !cmd.email().empty() + !cmd.phone().empty();
    if (named != 1) {
      return c.Error("lead_id", named == 0 ? "required: name the lead by lead_id, email or phone"
                                           : "name the lead by exactly one of lead_id, email, "
                                             "phone");
    }
    CommandTarget target;
    if (!cmd.lead_id().empty()) {
      LEADFLOW_RETURN_IF_ERROR(c.LeadId("lead_id", cmd.lead_id()));
      target.lead_id = cmd.lead_id();
    } else if (!cmd.email().empty()) {
      auto n = common::NormalizeEmail(cmd.email());
      if (!n.ok()) return c.Error("email", n.status().message());
      target.email = *n;  // the writer finds the lead answering for it
    } else {
      auto n = common::NormalizePhone(cmd.phone(), identity.phone_region);
      if (!n.ok()) return c.Error("phone", n.status().message());
      target.phone = *n;
    }
    return target;
  }

  const auto* desc = body->GetDescriptor();
  if (const auto* f = desc->FindFieldByName("customer_id"); f != nullptr) {
    const std::string id = body->GetReflection()->GetString(*body, f);
    LEADFLOW_RETURN_IF_ERROR(c.CustomerId(id));
    CommandTarget target;
    target.lead_id = common::LeadIdForCustomer(common::CustomerId(id)).value();
    target.customer_id = id;
    return target;
  }
  const auto* f = desc->FindFieldByName("lead_id");
  const std::string id = body->GetReflection()->GetString(*body, f);
  LEADFLOW_RETURN_IF_ERROR(c.LeadId("lead_id", id));
  CommandTarget target;
  target.lead_id = id;
  return target;
}

namespace {

absl::StatusOr<std::vector<v1::Event*>> DecideBody(const LeadState& lead,
                                                   const CustomerState& customer,
                                                   const v1::Command& command,
                                                   const DecideContext& context,
                                                   google::protobuf::Arena* arena) {
  const Checker c(CommandName(command));
  CommandTarget resolved;
  if (context.target == nullptr) {
    LEADFLOW_ASSIGN_OR_RETURN(
        resolved,
        ResolveTarget(command, context.identity != nullptr ? *context.identity : Identity{}));
  }
  const CommandTarget& target = context.target != nullptr ? *context.target : resolved;
  const v1::CommandMeta& meta = MetaOf(command);
  LEADFLOW_RETURN_IF_ERROR(CheckMeta(c, meta));
  if (lead.exists && lead.lead_id != target.lead_id) {
    return absl::InternalError(absl::StrCat(c.scope(), ": state of lead ", lead.lead_id,
                                            " given for a command on ", target.lead_id));
  }
  const Input in{c, lead, customer, context, meta, OccurredAt(meta, context), arena};
  if (lead.exists && lead.erased && !command.has_erase_lead()) {
    return absl::FailedPreconditionError(absl::StrCat(
        c.scope(), ": lead ", lead.lead_id,
        " was erased (its personal data destroyed); nothing more is recorded on it. A new "
        "capture of the person starts a new lead"));
  }

  switch (command.body_case()) {
    case v1::Command::kCaptureLead:
      return Capture(in, command.capture_lead(), target);
    case v1::Command::kRecordInquiry:
      return Inquiry(in, command.record_inquiry());
    case v1::Command::kUpdateContactDetails:
      return UpdateContact(in, command.update_contact_details());
    case v1::Command::kAssignLead:
      return Assign(in, command.assign_lead());
    case v1::Command::kSetTemperature:
      return Temperature(in, command.set_temperature());
    case v1::Command::kLogInteraction:
      return Interaction(in, command.log_interaction());
    case v1::Command::kScheduleFollowUp:
      return ScheduleFollowUp(in, command.schedule_follow_up());
    case v1::Command::kCompleteFollowUp:
      return CompleteFollowUp(in, command.complete_follow_up());
    case v1::Command::kQualifyLead:
      return Qualify(in, command.qualify_lead());
    case v1::Command::kChangeStage:
      return Stage(in, command.change_stage());
    case v1::Command::kRejectLead:
      return Reject(in, command.reject_lead());
    case v1::Command::kPostponeLead:
      return Postpone(in, command.postpone_lead());
    case v1::Command::kDisqualifyLead:
      return Disqualify(in, command.disqualify_lead());
    case v1::Command::kReactivateLead:
      return Reactivate(in, command.reactivate_lead());
    case v1::Command::kMergeLead:
      return Merge(in, command.merge_lead());
    case v1::Command::kConvertLead:
      return Convert(in, command.convert_lead());
    case v1::Command::kEraseLead:
      return Erase(in, command.erase_lead(), target.lead_id);
    case v1::Command::kUpdateCustomerProfile:
      return UpdateProfile(in, command.update_customer_profile());
    case v1::Command::kRecordPurchase:
      return Purchase(in, command.record_purchase());
    case v1::Command::kRecordNps:
      return Nps(in, command.record_nps());
    case v1::Command::BODY_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("command.body: no command set");
}

}  // namespace

absl::StatusOr<std::vector<v1::Event*>> DecideOnArena(const LeadState& lead,
                                                      const CustomerState& customer,
                                                      const v1::Command& command,
                                                      const DecideContext& context,
                                                      google::protobuf::Arena* arena) {
  auto events = DecideBody(lead, customer, command, context, arena);
  if (events.ok()) {
    const std::string type = CommandName(command);
    for (v1::Event* e : *events) e->set_command_type(type);
  }
  return events;
}

absl::StatusOr<std::vector<v1::Event>> Decide(const LeadState& lead, const CustomerState& customer,
                                              const v1::Command& command,
                                              const DecideContext& context) {
  google::protobuf::Arena arena;
  LEADFLOW_ASSIGN_OR_RETURN(std::vector<v1::Event*> made,
                            DecideOnArena(lead, customer, command, context, &arena));
  std::vector<v1::Event> events(made.size());
  for (size_t i = 0; i < made.size(); ++i) events[i] = *made[i];  // copies off the arena
  return events;
}

// ---- Evolve ---------------------------------------------------------------------------------

namespace {

absl::Status CheckEnvelope(const v1::Event& e, v1::AggregateType type, bool exists,
                           const std::string& id, int64_t version) {
  if (e.aggregate_type() != type) {
    return absl::DataLossError(absl::StrCat(
        "event ", e.event_id(), " on ", e.aggregate_id(), " has aggregate type ",
        v1::AggregateType_Name(e.aggregate_type()), ", expected ", v1::AggregateType_Name(type)));
  }
  if (exists && e.aggregate_id() != id) {
    return absl::DataLossError(
        absl::StrCat("event ", e.event_id(), " for ", e.aggregate_id(), " applied to ", id));
  }
  if (e.aggregate_version() != version + 1) {
    return absl::DataLossError(absl::StrCat("event ", e.event_id(), " on ", e.aggregate_id(),
                                            " has version ", e.aggregate_version(), ", expected ",
                                            version + 1));
  }
  return absl::OkStatus();
}

bool IsLeadEvent(v1::Event::PayloadCase c) {
  switch (c) {
    case v1::Event::kLeadCaptured:
    case v1::Event::kInquiryReceived:
    case v1::Event::kContactDetailsUpdated:
    case v1::Event::kLeadAssigned:
    case v1::Event::kTemperatureSet:
    case v1::Event::kInteractionLogged:
    case v1::Event::kFollowUpScheduled:
    case v1::Event::kFollowUpCompleted:
    case v1::Event::kLeadQualified:
    case v1::Event::kStageChanged:
    case v1::Event::kLeadRejected:
    case v1::Event::kLeadPostponed:
    case v1::Event::kLeadDisqualified:
    case v1::Event::kLeadReactivated:
    case v1::Event::kLeadMerged:
    case v1::Event::kLeadConverted:
    case v1::Event::kLeadErased:
      return true;
    default:
      return false;
  }
}

void Exit(LeadState& lead, v1::LeadStatus status, absl::Time at) {
  lead.status_before_exit = lead.status;
  lead.stage_before_exit = lead.stage;
  lead.status = status;
  lead.stage = v1::SALES_STAGE_UNSPECIFIED;
  lead.status_changed_at = at;
}

}  // namespace

v1::LeadStatus StatusAfter(v1::LeadStatus before, const v1::Event& e) {
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured:
      return v1::LEAD_STATUS_NEW;
    case v1::Event::kInteractionLogged:
      // The first outbound touch makes a new lead contacted.
      return before == v1::LEAD_STATUS_NEW &&
                     e.interaction_logged().direction() == v1::DIRECTION_OUTBOUND
                 ? v1::LEAD_STATUS_CONTACTED
                 : before;
    case v1::Event::kLeadQualified:
      return v1::LEAD_STATUS_QUALIFIED;
    case v1::Event::kLeadRejected:
      return v1::LEAD_STATUS_REJECTED;
    case v1::Event::kLeadPostponed:
      return v1::LEAD_STATUS_POSTPONED;
    case v1::Event::kLeadDisqualified:
      return v1::LEAD_STATUS_DISQUALIFIED;
    case v1::Event::kLeadReactivated:
      return e.lead_reactivated().restored_status();
    case v1::Event::kLeadMerged:
      return v1::LEAD_STATUS_MERGED;
    case v1::Event::kLeadConverted:
      return v1::LEAD_STATUS_CONVERTED;
    default:
      return before;  // the other events do not move the status
  }
}

uint32_t MilestonesReached(const v1::Event& e) {
  auto bit = [](Milestone m) { return 1u << m; };
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured:
      return bit(kCaptured);
    case v1::Event::kInteractionLogged: {
      const auto& b = e.interaction_logged();
      uint32_t reached = 0;
      // Contacted: an outbound touch. Presented: a demo or a free trial. Proposal: an offer.
      if (b.direction() == v1::DIRECTION_OUTBOUND) reached |= bit(kContacted);
      if (b.kind() == v1::INTERACTION_KIND_DEMO || b.kind() == v1::INTERACTION_KIND_FREE_TRIAL) {
        reached |= bit(kPresented);
      }
      if (b.kind() == v1::INTERACTION_KIND_OFFER_SENT) reached |= bit(kProposal);
      return reached;
    }
    case v1::Event::kLeadQualified:
      return bit(kQualified);
    case v1::Event::kLeadConverted:
      return bit(kConverted);
    default:
      return 0;
  }
}

absl::Status EvolveLead(LeadState& lead, const v1::Event& e) {
  LEADFLOW_RETURN_IF_ERROR(
      CheckEnvelope(e, v1::AGGREGATE_TYPE_LEAD, lead.exists, lead.lead_id, lead.version));
  const absl::Time at = FromProto(e.occurred_at());
  if (!lead.exists && e.payload_case() != v1::Event::kLeadCaptured) {
    return absl::DataLossError(absl::StrCat("event ", e.event_id(), " on unknown lead ",
                                            e.aggregate_id(), " is not a capture"));
  }
  // Every check comes before the first change, so `lead` is untouched on error.
  if (e.payload_case() == v1::Event::kLeadCaptured && lead.exists) {
    return absl::DataLossError(absl::StrCat("lead ", lead.lead_id, " captured twice"));
  }
  if (!IsLeadEvent(e.payload_case())) {
    return absl::DataLossError(
        absl::StrCat("event ", e.event_id(), " on lead ", e.aggregate_id(), " has payload field ",
                     static_cast<int>(e.payload_case()), ", which is not a lead event"));
  }
  LeadState& next = lead;
  const v1::LeadStatus status = StatusAfter(lead.status, e);
  switch (e.payload_case()) {
    case v1::Event::kLeadCaptured: {
      const auto& b = e.lead_captured();
      next.exists = true;
      next.lead_id = e.aggregate_id();
      next.captured_at = at;
      next.status_changed_at = at;
      next.full_name = b.person().full_name();
      next.company = b.company();
      next.title = b.title();
      next.email = b.email();
      next.phone = b.phone();
      next.source_channel = b.source_channel();
      next.origin_type = b.origin_type();
      next.campaign = b.campaign();
      next.temperature = b.temperature();
      break;
    }
    case v1::Event::kInquiryReceived:
      break;
    case v1::Event::kContactDetailsUpdated: {
      const auto& b = e.contact_details_updated();
      for (const std::string& f : b.changed()) {
        if (f == "person") next.full_name = b.person().full_name();
        if (f == "company") next.company = b.company();
        if (f == "title") next.title = b.title();
        if (f == "email") next.email = b.email();
        if (f == "phone") next.phone = b.phone();
      }
      break;
    }
    case v1::Event::kLeadAssigned:
      next.owner = e.lead_assigned().owner();
      next.team = e.lead_assigned().team();
      break;
    case v1::Event::kTemperatureSet:
      next.temperature = e.temperature_set().temperature();
      break;
    case v1::Event::kInteractionLogged:
      next.interaction_count++;
      if (status != next.status) next.status_changed_at = at;
      break;
    case v1::Event::kFollowUpScheduled: {
      const auto& b = e.follow_up_scheduled();
      next.open_follow_ups[b.follow_up_id()] = FollowUpState{.due_at = FromProto(b.due_at()),
                                                             .kind = b.kind(),
                                                             .note = b.note(),
                                                             .assignee = b.assignee()};
      break;
    }
    case v1::Event::kFollowUpCompleted:
      next.open_follow_ups.erase(e.follow_up_completed().follow_up_id());
      break;
    case v1::Event::kLeadQualified:
      next.stage = e.lead_qualified().stage();
      next.status_changed_at = at;
      break;
    case v1::Event::kStageChanged:
      next.stage = e.stage_changed().stage();
      break;
    case v1::Event::kLeadRejected:
      Exit(next, status, at);
      break;
    case v1::Event::kLeadPostponed:
      Exit(next, status, at);
      next.revisit_at = FromProto(e.lead_postponed().revisit_at());
      break;
    case v1::Event::kLeadDisqualified:
      Exit(next, status, at);
      break;
    case v1::Event::kLeadReactivated:
      next.stage = e.lead_reactivated().restored_stage();
      next.status_before_exit = v1::LEAD_STATUS_UNSPECIFIED;
      next.stage_before_exit = v1::SALES_STAGE_UNSPECIFIED;
      next.revisit_at = absl::InfinitePast();
      next.status_changed_at = at;
      break;
    case v1::Event::kLeadMerged:
      next.merged_into = e.lead_merged().survivor_lead_id();
      next.status_changed_at = at;
      break;
    case v1::Event::kLeadConverted:
      next.customer_id = e.lead_converted().customer_id();
      next.status_changed_at = at;
      break;
    case v1::Event::kLeadErased:
      // Status, stage and milestones stay (the funnel is unchanged); the person goes, and with
      // them the contacts it held (contacts.h: an erased lead holds none).
      next.erased = true;
      next.full_name.clear();
      next.title.clear();
      next.email.clear();
      next.phone.clear();
      for (auto& [id, f] : next.open_follow_ups) f.note.clear();
      break;
    default:
      break;  // excluded above
  }
  next.status = status;
  next.version = e.aggregate_version();
  return absl::OkStatus();
}

absl::Status EvolveCustomer(CustomerState& customer, const v1::Event& e) {
  LEADFLOW_RETURN_IF_ERROR(CheckEnvelope(e, v1::AGGREGATE_TYPE_CUSTOMER, customer.exists,
                                         customer.customer_id, customer.version));
  if (!customer.exists && e.payload_case() != v1::Event::kCustomerCreated) {
    return absl::DataLossError(absl::StrCat("event ", e.event_id(), " on unknown customer ",
                                            e.aggregate_id(), " is not a creation"));
  }
  CustomerState next = customer;
  switch (e.payload_case()) {
    case v1::Event::kCustomerCreated:
      if (customer.exists) {
        return absl::DataLossError(
            absl::StrCat("customer ", customer.customer_id, " created twice"));
      }
      next.exists = true;
      next.customer_id = e.aggregate_id();
      next.lead_id = e.customer_created().lead_id();
      next.converted_at = FromProto(e.customer_created().converted_at());
      next.account_owner = e.customer_created().account_owner();
      break;
    case v1::Event::kCustomerProfileUpdated:
      for (const std::string& f : e.customer_profile_updated().changed()) {
        if (f == "account_owner") next.account_owner = e.customer_profile_updated().account_owner();
      }
      break;
    case v1::Event::kPurchaseRecorded:
      next.purchase_count++;
      break;
    case v1::Event::kNpsRecorded:
    case v1::Event::kInquiryReceived:
      break;
    default:
      return absl::DataLossError(absl::StrCat(
          "event ", e.event_id(), " on customer ", e.aggregate_id(), " has payload field ",
          static_cast<int>(e.payload_case()), ", which is not a customer event"));
  }
  next.version = e.aggregate_version();
  customer = std::move(next);
  return absl::OkStatus();
}

}  // namespace leadflow::lead
