// Lead and customer views, fed by real commands through the writer and the embedded log.
#include "projections/lead/lead_view.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "projections/customer/customer_view.h"
#include "services/command/writer.h"
#include "services/common/ids.h"
#include "services/common/time_util.h"
#include "services/log/embedded_log.h"
#include "services/log/event_codec.h"

namespace leadflow::projections {
namespace {

using common::ToProto;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const absl::Time kT0 = absl::FromCivil(absl::CivilSecond(2026, 5, 4, 9, 0, 0), absl::UTCTimeZone());
absl::Time H(int hours) { return kT0 + absl::Hours(hours); }

// The lead ids of every page of a listing, followed by its tokens (at most 50 pages).
std::vector<std::string> AllPages(const LeadQueries& q, v1::ListLeadsRequest req) {
  std::vector<std::string> ids;
  for (int page = 0; page < 50; ++page) {
    auto r = q.List(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    for (const auto& l : r->leads()) ids.push_back(l.lead_id());
    if (r->next_page_token().empty()) break;
    req.set_page_token(r->next_page_token());
  }
  return ids;
}

class ViewsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::filesystem::temp_directory_path() / "leadflow-views-XXXXXX";
    dir_ = mkdtemp(tmpl.data());
    log::EmbeddedLogOptions o;
    o.dir = dir_ + "/log";
    o.partitions = 4;
    log_ = std::move(*log::EmbeddedLog::Open(o));
    writer_ = std::move(*command::CommandWriter::Open(log_.get(), &clock_, {}));
    leads_store_ = OpenStore("lead", lead_projection_.column_families());
    customers_store_ = OpenStore("customer", customer_projection_.column_families());
  }
  void TearDown() override {
    writer_.reset();
    leads_store_.reset();
    customers_store_.reset();
    log_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<ViewStore> OpenStore(const std::string& name,
                                       const std::vector<std::string>& cfs) {
    auto s = ViewStore::Open({.dir = absl::StrCat(dir_, "/views/", name), .column_families = cfs});
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
  void CatchUp() {
    ProjectionRunner leads(log_.get(), leads_store_.get(), &lead_projection_);
    ASSERT_TRUE(leads.CatchUp().ok());
    ProjectionRunner customers(log_.get(), customers_store_.get(), &customer_projection_);
    ASSERT_TRUE(customers.CatchUp().ok());
  }

  v1::CommandMeta Meta(absl::Time at) {
    v1::CommandMeta m;
    m.set_command_id(absl::StrCat("c", ++ids_));
    m.mutable_actor()->set_id("alice");
    *m.mutable_occurred_at() = ToProto(at);
    return m;
  }
  v1::CommandReply Run(v1::Command c) {
    auto r = writer_->Execute(c);
    EXPECT_TRUE(r.ok()) << c.ShortDebugString() << ": " << r.status();
    return r.ok() ? *r : v1::CommandReply();
  }
  std::string Capture(const std::string& email, absl::Time at, const std::string& owner = "",
                      v1::SourceChannel source = v1::SOURCE_CHANNEL_WEB_FORM) {
    v1::Command c;
    auto* b = c.mutable_capture_lead();
    *b->mutable_meta() = Meta(at);
    b->mutable_person()->set_full_name("Person " + email);
    b->set_email(email);
    b->set_source_channel(source);
    b->set_temperature(v1::TEMPERATURE_WARM);
    b->mutable_acquisition_cost()->set_currency_code("EUR");
    b->mutable_acquisition_cost()->set_amount_micros(35'000'000);
    const std::string id = Run(c).lead_id();
    if (!owner.empty()) Assign(id, owner, at);
    return id;
  }
  void Assign(const std::string& id, const std::string& owner, absl::Time at) {
    v1::Command c;
    *c.mutable_assign_lead()->mutable_meta() = Meta(at);
    c.mutable_assign_lead()->set_lead_id(id);
    c.mutable_assign_lead()->set_owner(owner);
    Run(c);
  }
  void Touch(const std::string& id, v1::InteractionKind kind, v1::Direction dir, absl::Time at) {
    v1::Command c;
    auto* b = c.mutable_log_interaction();
    *b->mutable_meta() = Meta(at);
    b->set_lead_id(id);
    b->set_kind(kind);
    b->set_direction(dir);
    Run(c);
  }
  void Qualify(const std::string& id, absl::Time at) {
    v1::Command c;
    auto* b = c.mutable_qualify_lead();
    *b->mutable_meta() = Meta(at);
    b->set_lead_id(id);
    b->mutable_budget()->set_currency_code("EUR");
    b->mutable_budget()->set_amount_micros(50'000'000'000);
    b->set_decision_maker("CFO");
    b->set_need("reporting");
    *b->mutable_expected_decision_at() = ToProto(at + absl::Hours(24 * 30));
    Run(c);
  }

  std::string dir_;
  common::FakeClock clock_{H(24 * 365)};
  std::unique_ptr<log::EventLog> log_;
  std::unique_ptr<command::CommandWriter> writer_;
  LeadProjection lead_projection_;
  CustomerProjection customer_projection_;
  std::unique_ptr<ViewStore> leads_store_, customers_store_;
  int ids_ = 0;
};

TEST_F(ViewsTest, LeadAndCustomerThroughTheWholeLifecycle) {
  const std::string id = Capture("ada@example.com", H(0), "bob");
  Touch(id, v1::INTERACTION_KIND_EMAIL, v1::DIRECTION_INBOUND, H(1));
  Touch(id, v1::INTERACTION_KIND_CALL, v1::DIRECTION_OUTBOUND, H(3));
  Qualify(id, H(5));
  Touch(id, v1::INTERACTION_KIND_DEMO, v1::DIRECTION_OUTBOUND, H(7));
  Touch(id, v1::INTERACTION_KIND_OFFER_SENT, v1::DIRECTION_OUTBOUND, H(9));
  Touch(id, v1::INTERACTION_KIND_CALL, v1::DIRECTION_OUTBOUND, H(2));  // logged late
  {
    v1::Command c;
    *c.mutable_schedule_follow_up()->mutable_meta() = Meta(H(10));
    c.mutable_schedule_follow_up()->set_lead_id(id);
    c.mutable_schedule_follow_up()->set_follow_up_id("fu-1");
    *c.mutable_schedule_follow_up()->mutable_due_at() = ToProto(H(30));
    Run(c);
  }
  v1::CommandReply converted;
  {
    v1::Command c;
    auto* b = c.mutable_convert_lead();
    *b->mutable_meta() = Meta(H(40));
    b->set_lead_id(id);
    b->mutable_deal_value()->set_currency_code("EUR");
    b->mutable_deal_value()->set_amount_micros(42'000'000'000);
    b->set_contract_ref("C-1");
    converted = Run(c);
  }
  for (int i = 0; i < 2; ++i) {
    v1::Command c;
    auto* b = c.mutable_record_purchase();
    *b->mutable_meta() = Meta(H(50 + i));
    b->set_customer_id(converted.customer_id());
    b->set_kind(i == 0 ? v1::PURCHASE_KIND_FIRST : v1::PURCHASE_KIND_UPSELL);
    b->mutable_amount()->set_currency_code("EUR");
    b->mutable_amount()->set_amount_micros(1'000'000'000);
    Run(c);
  }
  {
    v1::Command c;
    *c.mutable_record_nps()->mutable_meta() = Meta(H(60));
    c.mutable_record_nps()->set_customer_id(converted.customer_id());
    c.mutable_record_nps()->set_score(9);
    Run(c);
  }
  CatchUp();

  auto v = LeadQueries(leads_store_.get()).Get(id);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->status(), v1::LEAD_STATUS_CONVERTED);
  EXPECT_EQ(v->version(), 10);
  EXPECT_EQ(v->owner(), "bob");
  EXPECT_EQ(v->temperature_at_capture(), v1::TEMPERATURE_WARM);
  EXPECT_EQ(v->acquisition_cost().amount_micros(), 35'000'000);
  EXPECT_EQ(v->touches_total(), 5);
  ASSERT_EQ(v->touches_size(), 4);  // call, email, demo, offer sent (kind order)
  EXPECT_EQ(v->touches(0).kind(), v1::INTERACTION_KIND_CALL);
  EXPECT_EQ(v->touches(0).outbound(), 2);
  EXPECT_EQ(v->touches(1).kind(), v1::INTERACTION_KIND_EMAIL);
  EXPECT_EQ(v->touches(1).inbound(), 1);
  EXPECT_EQ(common::FromProto(v->last_interaction_at()), H(9));
  EXPECT_EQ(v->last_interaction_kind(), v1::INTERACTION_KIND_OFFER_SENT);
  // Milestones: earliest own times, including the late-logged call at +2h.
  EXPECT_EQ(common::FromProto(v->milestones().captured()), H(0));
  EXPECT_EQ(common::FromProto(v->milestones().contacted()), H(2));
  EXPECT_EQ(common::FromProto(v->milestones().qualified()), H(5));
  EXPECT_EQ(common::FromProto(v->milestones().presented()), H(7));
  EXPECT_EQ(common::FromProto(v->milestones().proposal()), H(9));
  EXPECT_EQ(common::FromProto(v->milestones().converted()), H(40));
  EXPECT_EQ(common::FromProto(v->milestones_recorded().contacted()), H(24 * 365))
      << "record time: when leadflow stored the late call";
  EXPECT_EQ(v->bant().decision_maker(), "CFO");
  ASSERT_EQ(v->open_follow_ups_size(), 1);
  EXPECT_EQ(v->customer_id(), converted.customer_id());
  EXPECT_EQ(v->last_position().offset(), converted.last_position().offset() - 1)
      << "the lead's last event is the conversion, just before customer_created";

  v1::GetCustomerRequest by_lead;
  by_lead.set_lead_id(id);
  auto c = CustomerQueries(customers_store_.get()).Get(by_lead);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->customer_id(), converted.customer_id());
  EXPECT_EQ(c->account_owner(), "bob");
  EXPECT_EQ(c->deal_value().amount_micros(), 42'000'000'000);
  EXPECT_EQ(common::FromProto(c->converted_at()), H(40));
  ASSERT_EQ(c->purchases_size(), 2);
  EXPECT_EQ(c->purchases(0).kind(), v1::PURCHASE_KIND_FIRST);
  EXPECT_EQ(c->purchases(1).amount_micros(), 1'000'000'000);
  EXPECT_TRUE(c->has_nps());
  EXPECT_EQ(c->latest_nps_category(), v1::NPS_CATEGORY_PROMOTER);
  EXPECT_EQ(c->version(), 4);
  v1::ListCustomersRequest list;
  list.set_account_owner("bob");
  EXPECT_EQ(CustomerQueries(customers_store_.get()).List(list)->customers_size(), 1);

  auto timeline = LeadQueries(leads_store_.get()).Timeline(id);
  ASSERT_TRUE(timeline.ok());
  EXPECT_EQ(timeline->events_size(), 10 + 4) << "lead events and its customer's";
}

TEST_F(ViewsTest, LookupsFollowContactChangesAndErrorsNameTheField) {
  const std::string id = Capture("ada@example.com", H(0));
  {
    v1::Command c;
    *c.mutable_update_contact_details()->mutable_meta() = Meta(H(1));
    c.mutable_update_contact_details()->set_lead_id(id);
    c.mutable_update_contact_details()->set_email("ada@newjob.example");
    c.mutable_update_contact_details()->set_phone("+44 20 7946 0000");
    Run(c);
  }
  CatchUp();
  LeadQueries q(leads_store_.get());
  v1::FindLeadRequest find;
  find.set_email("ADA@newjob.example");
  EXPECT_EQ(q.Find(find)->lead_id(), id);
  find.set_email("ada@example.com");
  EXPECT_EQ(q.Find(find).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(q.Find(find).status().message(), "no lead with this email")
      << "a personal value is never quoted in an error";
  find.clear_email();
  find.set_phone("+442079460000");
  EXPECT_EQ(q.Find(find)->lead_id(), id);
  find.set_phone("12");
  EXPECT_THAT(std::string(q.Find(find).status().message()),
              HasSubstr("phone: not a valid phone number"));
  find.set_email("x@example.com");
  EXPECT_EQ(q.Find(find).status().message(), "phone: set only one of email or phone");
  EXPECT_EQ(q.Find({}).status().message(), "email: set email or phone");
  EXPECT_EQ(q.Get("nope").status().message(),
            "lead_id: 'nope' is not a lead id (ld_ and 20 hex digits)");
  EXPECT_EQ(q.Get(common::LeadIdForEmail("none@example.com")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ViewsTest, ListFiltersSortsAndPages) {
  std::vector<std::string> bobs;
  for (int i = 0; i < 25; ++i) {
    const std::string owner = i % 2 == 0 ? "bob" : "carol";
    std::string id = Capture(absl::StrCat("lead", i, "@example.com"), H(i), owner);
    if (owner == "bob") bobs.push_back(id);
  }
  CatchUp();
  LeadQueries q(leads_store_.get());
  v1::ListLeadsRequest req;
  req.set_owner("bob");
  req.set_page_size(5);
  EXPECT_EQ(AllPages(q, req), bobs) << "bob's 13 leads, in capture order, across pages";

  v1::ListLeadsRequest desc;
  desc.set_descending(true);
  desc.set_page_size(3);
  desc.mutable_captured_from()->CopyFrom(ToProto(H(10)));
  desc.mutable_captured_to()->CopyFrom(ToProto(H(20)));
  auto r = q.List(desc);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->leads_size(), 3);
  EXPECT_EQ(common::FromProto(r->leads(0).milestones().captured()), H(19));
  EXPECT_EQ(common::FromProto(r->leads(2).milestones().captured()), H(17));

  v1::ListLeadsRequest bad;
  bad.set_page_token("!!!");
  EXPECT_EQ(q.List(bad).status().message(),
            "page_token: not a token of this listing (same sort and direction required)");
  bad.set_page_token(r->next_page_token());  // a descending token on an ascending listing
  EXPECT_EQ(q.List(bad).status().code(), absl::StatusCode::kInvalidArgument);
  v1::ListLeadsRequest size;
  size.set_page_size(5000);
  EXPECT_EQ(q.List(size).status().message(), "page_size: must be 1 to 1000 (got 5000)");
  v1::ListLeadsRequest status;
  status.set_status(static_cast<v1::LeadStatus>(77));
  EXPECT_EQ(q.List(status).status().message(), "status: unknown value 77");
  v1::ListLeadsRequest inverted;
  inverted.mutable_captured_from()->CopyFrom(ToProto(H(5)));
  inverted.mutable_captured_to()->CopyFrom(ToProto(H(5)));
  EXPECT_EQ(q.List(inverted).status().message(), "captured_to: must be after captured_from");
}

// Filtered listings read a filter's own index and counts come from stored counters: both must
// agree with a filter applied to every row, also after leads change status and owner in later
// batches (counters moved from one value to another).
TEST_F(ViewsTest, FilteredListsAndCountsAgreeWithEveryRow) {
  const std::vector<std::string> owners = {"bob", "carol", ""};
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(Capture(absl::StrCat("f", i, "@example.com"), H(i), owners[i % 3],
                          i % 4 == 0 ? v1::SOURCE_CHANNEL_EVENT : v1::SOURCE_CHANNEL_WEB_FORM));
    if (i % 2 == 0) Touch(ids.back(), v1::INTERACTION_KIND_CALL, v1::DIRECTION_OUTBOUND, H(i));
  }
  CatchUp();
  for (int i = 0; i < 40; i += 5) Qualify(ids[i], H(50 + i));
  for (int i = 1; i < 40; i += 7) Assign(ids[i], "dave", H(60 + i));
  CatchUp();
  LeadQueries q(leads_store_.get());
  std::vector<v1::LeadView> rows;
  for (const std::string& id : ids) rows.push_back(*q.Get(id));

  std::vector<v1::ListLeadsRequest> requests(7);
  requests[0].set_status(v1::LEAD_STATUS_QUALIFIED);
  requests[1].set_owner("dave");
  requests[2].set_owner("bob");
  requests[2].set_status(v1::LEAD_STATUS_QUALIFIED);
  requests[3].set_source_channel(v1::SOURCE_CHANNEL_EVENT);
  requests[3].set_owner("carol");
  requests[3].set_temperature(v1::TEMPERATURE_WARM);
  requests[4].set_temperature(v1::TEMPERATURE_WARM);
  requests[4].set_descending(true);
  requests[5].set_status(v1::LEAD_STATUS_NEW);
  requests[5].mutable_captured_from()->CopyFrom(ToProto(H(10)));
  requests[5].mutable_captured_to()->CopyFrom(ToProto(H(30)));
  requests[6].set_owner("nobody");
  for (v1::ListLeadsRequest& req : requests) {
    SCOPED_TRACE(req.ShortDebugString());
    std::vector<std::string> want;
    for (const v1::LeadView& v : rows) {
      const absl::Time at = common::FromProto(v.milestones().captured());
      if ((req.status() == 0 || v.status() == req.status()) &&
          (req.owner().empty() || v.owner() == req.owner()) &&
          (req.source_channel() == 0 || v.source_channel() == req.source_channel()) &&
          (req.temperature() == 0 || v.temperature() == req.temperature()) &&
          (!req.has_captured_from() || at >= common::FromProto(req.captured_from())) &&
          (!req.has_captured_to() || at < common::FromProto(req.captured_to()))) {
        want.push_back(v.lead_id());
      }
    }
    if (req.descending()) std::reverse(want.begin(), want.end());
    if (req.owner() != "nobody") {
      EXPECT_FALSE(want.empty());
    }
    req.set_page_size(3);
    EXPECT_EQ(AllPages(q, req), want);
    if (req.has_captured_from()) continue;  // counts take no time range
    v1::CountLeadsRequest count;
    count.set_status(req.status());
    count.set_owner(req.owner());
    count.set_source_channel(req.source_channel());
    count.set_temperature(req.temperature());
    auto n = q.Count(count);
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(n->count(), static_cast<int64_t>(want.size()));
  }
  auto all = q.Count(v1::CountLeadsRequest());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->count(), 40);

  // A token names the index it reads: it does not continue a listing with other filters.
  v1::ListLeadsRequest bob;
  bob.set_owner("bob");
  bob.set_page_size(2);
  auto first = q.List(bob);
  ASSERT_TRUE(first.ok());
  v1::ListLeadsRequest carol;
  carol.set_owner("carol");
  carol.set_page_token(first->next_page_token());
  EXPECT_EQ(q.List(carol).status().message(),
            "page_token: not a token of this listing (same sort, direction and filters required)");
  v1::CountLeadsRequest bad;
  bad.set_temperature(static_cast<v1::Temperature>(99));
  EXPECT_EQ(q.Count(bad).status().message(), "temperature: unknown value 99");

  // Three filters are checked row by row on the most selective one's index, within a bound.
  v1::CountLeadsRequest three;
  three.set_owner("carol");
  three.set_temperature(v1::TEMPERATURE_WARM);
  three.set_source_channel(v1::SOURCE_CHANNEL_WEB_FORM);
  q.set_max_scan(3);
  auto refused = q.Count(three);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("count with at most two filters"));
  // A listing under the same bound answers a short page and a token to go on.
  v1::ListLeadsRequest sparse;
  sparse.set_owner("dave");
  sparse.set_sort(v1::ListLeadsRequest::SORT_LAST_ACTIVITY);
  auto page = q.List(sparse);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_LT(page->leads_size(), 3);
  EXPECT_FALSE(page->next_page_token().empty());
}

TEST_F(ViewsTest, TimelineOfASurvivorIncludesItsMergedDuplicates) {
  const std::string survivor = Capture("ada@example.com", H(0));
  const std::string dup = Capture("ada.l@example.com", H(1));
  {
    v1::Command c;
    *c.mutable_merge_lead()->mutable_meta() = Meta(H(2));
    c.mutable_merge_lead()->set_lead_id(dup);
    c.mutable_merge_lead()->set_survivor_lead_id(survivor);
    Run(c);
  }
  CatchUp();
  auto t = LeadQueries(leads_store_.get()).Timeline(survivor);
  ASSERT_TRUE(t.ok());
  EXPECT_THAT(t->merged_lead_ids(), ElementsAre(dup));
  ASSERT_EQ(t->events_size(), 3);
  EXPECT_TRUE(t->events(2).has_lead_merged());
}

TEST_F(ViewsTest, OverdueFollowUpsPerOwner) {
  const std::string id = Capture("ada@example.com", H(0), "bob");
  for (int i = 0; i < 3; ++i) {
    v1::Command c;
    *c.mutable_schedule_follow_up()->mutable_meta() = Meta(H(1));
    c.mutable_schedule_follow_up()->set_lead_id(id);
    c.mutable_schedule_follow_up()->set_follow_up_id(absl::StrCat("fu-", i));
    *c.mutable_schedule_follow_up()->mutable_due_at() = ToProto(H(10 * (i + 1)));
    Run(c);
  }
  {
    v1::Command c;
    *c.mutable_complete_follow_up()->mutable_meta() = Meta(H(2));
    c.mutable_complete_follow_up()->set_lead_id(id);
    c.mutable_complete_follow_up()->set_follow_up_id("fu-0");
    Run(c);
  }
  CatchUp();
  v1::ListOverdueFollowUpsRequest req;
  req.set_owner("bob");
  *req.mutable_as_of() = ToProto(H(25));
  auto r = LeadQueries(leads_store_.get()).Overdue(req, absl::Now());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->follow_ups_size(), 1) << "fu-0 done, fu-1 due at +20h, fu-2 not yet due";
  EXPECT_EQ(r->follow_ups(0).follow_up().follow_up_id(), "fu-1");
  EXPECT_EQ(r->follow_ups(0).lead_name(), "Person ada@example.com");
  req.clear_owner();
  EXPECT_EQ(LeadQueries(leads_store_.get()).Overdue(req, absl::Now()).status().message(),
            "owner: required");
}

TEST_F(ViewsTest, AnEventTheReducerRefusesStopsThePartitionAndWritesNothing) {
  const std::string id = Capture("ada@example.com", H(0), "bob");
  Touch(id, v1::INTERACTION_KIND_CALL, v1::DIRECTION_OUTBOUND, H(1));
  CatchUp();
  const std::string row_before = *leads_store_->Get(LeadProjection::kLeads, id);
  // An event with a version gap (as a buggy or foreign writer might append), then a valid-looking
  // event after it: the view must stop exactly at the gap.
  v1::Event gap;
  gap.set_schema_version(1);
  gap.set_aggregate_type(v1::AGGREGATE_TYPE_LEAD);
  gap.set_aggregate_id(id);
  gap.set_partition_key(id);
  gap.set_aggregate_version(9);
  *gap.mutable_occurred_at() = ToProto(H(2));
  gap.mutable_lead_assigned()->set_owner("mallory");
  const int32_t p = log::PartitionForKey(id, 4);
  auto appended = log_->Append(p, {*log::EncodeEvent(gap)});
  ASSERT_TRUE(appended.ok());
  ProjectionRunner runner(log_.get(), leads_store_.get(), &lead_projection_);
  absl::Status st = runner.CatchUp();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(st.message()),
      HasSubstr(absl::StrCat("view lead stopped: partition ", p, " offset ", appended->first_offset,
                             ": event  on ", id, " has version 9, expected 4")));
  EXPECT_EQ(*leads_store_->Get(LeadProjection::kLeads, id), row_before) << "row unchanged";
  auto timeline = LeadQueries(leads_store_.get()).Timeline(id);
  ASSERT_TRUE(timeline.ok());
  EXPECT_EQ(timeline->events_size(), 3) << "no timeline entry for the refused event";
  EXPECT_EQ(*leads_store_->StoredOffset(p), appended->first_offset) << "stopped exactly there";
}

// Every row of every column family, as one string: what "identical views" means.
std::string Dump(const ViewStore& store, int families) {
  std::string out;
  for (int cf = 0; cf < families; ++cf) {
    auto it = store.NewIterator(cf);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StrAppend(&out, cf, "|", it->key().ToString(), "=", it->value().ToString(), "\n");
    }
  }
  for (int32_t p = 0; p < 4; ++p) absl::StrAppend(&out, "offset", p, "=", *store.StoredOffset(p));
  return out;
}

TEST_F(ViewsTest, RebuildFromOffsetZeroIsByteIdentical) {
  // Live: applied in several catch-ups as the history grows.
  for (int i = 0; i < 20; ++i) {
    const std::string id = Capture(absl::StrCat("l", i, "@example.com"), H(i), "bob");
    Touch(id, v1::INTERACTION_KIND_CALL, v1::DIRECTION_OUTBOUND, H(i + 1));
    if (i % 3 == 0) Qualify(id, H(i + 2));
    if (i % 5 == 0) CatchUp();
  }
  CatchUp();
  auto rebuilt_leads = OpenStore("lead.rebuild", lead_projection_.column_families());
  auto rebuilt_customers = OpenStore("customer.rebuild", customer_projection_.column_families());
  ASSERT_TRUE(ProjectionRunner(log_.get(), rebuilt_leads.get(), &lead_projection_).CatchUp().ok());
  ASSERT_TRUE(
      ProjectionRunner(log_.get(), rebuilt_customers.get(), &customer_projection_).CatchUp().ok());
  EXPECT_EQ(Dump(*rebuilt_leads, 3), Dump(*leads_store_, 3));
  EXPECT_EQ(Dump(*rebuilt_customers, 2), Dump(*customers_store_, 2));
  EXPECT_GT(Dump(*leads_store_, 3).size(), 1000u);
}

}  // namespace
}  // namespace leadflow::projections
