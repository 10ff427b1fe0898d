// leadctl's output for people: a command's reply, a lead, a customer, lists and the log, as
// plain text (the analytics tables, also as CSV, are in report.h; --json prints the message).
#ifndef LEADFLOW_TOOLS_LEADCTL_SHOW_H_
#define LEADFLOW_TOOLS_LEADCTL_SHOW_H_

#include <string>

#include "google/protobuf/timestamp.pb.h"
#include "leadflow/v1/commands.pb.h"
#include "leadflow/v1/events.pb.h"
#include "leadflow/v1/views.pb.h"

namespace leadflow::leadctl {

std::string OrDash(const std::string& s);
// A time as "YYYY-MM-DD HH:MM" (UTC); "-" if unset.
std::string DateTime(const google::protobuf::Timestamp& ts);
// `s` padded (or cut with "~") to `width` characters, and one space.
std::string Cell(const std::string& s, size_t width);
// What an event did, in a few words ("assigned to bob").
std::string Summarize(const v1::Event& e);

void PrintReply(const std::string& command, const v1::CommandReply& r);
void PrintLead(const v1::LeadView& l);
void PrintLeadTable(const v1::ListLeadsResponse& r);
void PrintTimeline(const v1::LeadTimeline& t);
void PrintOverdue(const v1::ListOverdueFollowUpsResponse& r);
void PrintCustomer(const v1::CustomerView& c);
void PrintCustomerTable(const v1::ListCustomersResponse& r);
void PrintViewStatus(const v1::ViewStatus& vs);

}  // namespace leadflow::leadctl

#endif  // LEADFLOW_TOOLS_LEADCTL_SHOW_H_
