// Redaction follows the contract's personal marks, through nested and repeated messages.
#include "services/auth/redact.h"

#include "gtest/gtest.h"
#include "leadflow/v1/analytics.pb.h"
#include "leadflow/v1/events.pb.h"
#include "leadflow/v1/views.pb.h"

namespace leadflow::auth {
namespace {

TEST(RedactTest, PersonalFieldsGoEverythingElseStays) {
  v1::ListLeadsResponse page;
  v1::LeadView* lead = page.add_leads();
  lead->set_lead_id("ld_1");
  lead->mutable_person()->set_full_name("Ada Lovelace");
  lead->set_email("ada@example.com");
  lead->set_phone("+441234567890");
  lead->set_title("Countess");
  lead->set_interest_note("engines");
  lead->set_company("Analytical Engines");
  lead->set_owner("bob");
  lead->set_status(v1::LEAD_STATUS_CONTACTED);
  lead->mutable_bant()->set_decision_maker("Charles");
  lead->mutable_bant()->mutable_budget()->set_amount_micros(5);
  RedactPersonal(&page);
  ASSERT_EQ(page.leads_size(), 1);
  EXPECT_FALSE(lead->has_person());
  EXPECT_EQ(lead->email(), "");
  EXPECT_EQ(lead->phone(), "");
  EXPECT_EQ(lead->title(), "");
  EXPECT_EQ(lead->interest_note(), "");
  EXPECT_EQ(lead->bant().decision_maker(), "");
  // What analytics needs stays.
  EXPECT_EQ(lead->lead_id(), "ld_1");
  EXPECT_EQ(lead->company(), "Analytical Engines");
  EXPECT_EQ(lead->owner(), "bob");
  EXPECT_EQ(lead->status(), v1::LEAD_STATUS_CONTACTED);
  EXPECT_EQ(lead->bant().budget().amount_micros(), 5);
}

TEST(RedactTest, EventsAndExitsAreMarkedToo) {
  v1::Event e;
  e.mutable_lead_captured()->set_email("ada@example.com");
  e.mutable_lead_captured()->set_company("AE");
  RedactPersonal(&e);
  EXPECT_EQ(e.lead_captured().email(), "");
  EXPECT_EQ(e.lead_captured().company(), "AE");
  v1::ExitRecord exit;
  exit.set_lead_name("Ada");
  exit.set_text("said no");
  exit.set_reason("no_budget");
  RedactPersonal(&exit);
  EXPECT_EQ(exit.lead_name(), "");
  EXPECT_EQ(exit.text(), "");
  EXPECT_EQ(exit.reason(), "no_budget");
}

}  // namespace
}  // namespace leadflow::auth
