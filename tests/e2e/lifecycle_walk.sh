#!/usr/bin/env bash
# A scripted session through leadctl, as a sales-ops user would drive it: one lead from capture
# to customer, another through reject -> reactivate -> postpone -> reactivate; every refused
# transition of design §3 returns its documented error; retries are idempotent.
# Usage: lifecycle_walk.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"
start_server --partitions 4

status() { ctl --json get "$1" | json status; }
version() { ctl --json get "$1" | json version; }

# The business times of this walk: fixed, in the past, in order.
T0=2026-01-05T09:00:00Z

echo "== lead 1: capture -> contact -> qualify -> stages -> convert"
A=$(ctl --json capture --name "Ada Lovelace" --email ada@example.com --company "Analytical Engines" \
      --source referral --temperature hot --cost "EUR 40" --at $T0 --id a-capture | json lead_id)
expect_eq "captured" LEAD_STATUS_NEW "$(status "$A")"
ctl assign "$A" --owner bob --team emea --at 2026-01-05T10:00:00Z --id a-assign >/dev/null
ctl interaction "$A" --kind call --direction outbound --outcome connected --duration 600 \
    --at 2026-01-06T10:00:00Z --id a-call >/dev/null
expect_eq "first outbound touch" LEAD_STATUS_CONTACTED "$(status "$A")"
ctl qualify "$A" --budget "EUR 50000" --decision-maker "Ada (CTO)" --need "reporting" \
    --decision-by 2026-03-01 --at 2026-01-10T10:00:00Z --id a-qualify >/dev/null
expect_eq "qualified" LEAD_STATUS_QUALIFIED "$(status "$A")"
ctl stage "$A" needs-analysis --at 2026-01-11T10:00:00Z --id a-s1 >/dev/null
ctl interaction "$A" --kind demo --direction outbound --outcome positive \
    --at 2026-01-12T10:00:00Z --id a-demo >/dev/null
ctl stage "$A" solution-presentation --at 2026-01-12T11:00:00Z --id a-s2 >/dev/null
ctl stage "$A" closing --at 2026-01-20T10:00:00Z --id a-s3 >/dev/null
expect_eq "stage" SALES_STAGE_CLOSING "$(ctl --json get "$A" | json stage)"

# Retry of an earlier command: same reply, nothing written.
V=$(version "$A")
R=$(ctl --json stage "$A" closing --at 2026-01-20T10:00:00Z --id a-s3)
expect_eq "retry replayed" True "$(json replayed <<<"$R")"
expect_eq "retry wrote nothing" "$V" "$(version "$A")"
expect_refusal 1 "ALREADY_EXISTS: change_stage.meta.command_id: 'a-s3' was already used" \
  ctl stage "$A" needs-analysis --id a-s3

CONV=$(ctl --json convert "$A" --deal "EUR 42000" --contract C-17 --at 2026-02-01T10:00:00Z --id a-convert)
CUST=$(json customer_id <<<"$CONV")
expect_eq "converted" LEAD_STATUS_CONVERTED "$(status "$A")"
expect_eq "customer linked" "$CUST" "$(ctl --json get "$A" | json customer_id)"
ctl purchase "$CUST" --kind first --amount "EUR 42000" --at 2026-02-02T10:00:00Z --id a-p1 >/dev/null
ctl nps "$CUST" 9 --comment "great onboarding" --at 2026-03-01T10:00:00Z --id a-nps >/dev/null
expect_refusal 1 "FAILED_PRECONDITION: qualify_lead: lead $A is CONVERTED, a terminal status; record later business on customer $CUST" \
  ctl qualify "$A" --budget "EUR 1" --decision-maker x --need y --decision-by 2027-01-01
expect_refusal 1 "FAILED_PRECONDITION: record_purchase: customer $CUST already has 1 purchase(s)" \
  ctl purchase "$CUST" --kind first --amount "EUR 5"

echo "== lead 2: reject -> reactivate -> postpone -> reactivate"
B=$(ctl --json capture --name "Bob Byte" --phone "+48 600 100 200" --source cold-call \
      --at $T0 --id b-capture | json lead_id)
ctl interaction "$B" --kind call --direction outbound --outcome no-answer --at 2026-01-06T09:00:00Z --id b-call >/dev/null
ctl reject "$B" --reason bad-timing --at 2026-01-07T09:00:00Z --id b-reject >/dev/null
expect_eq "rejected" LEAD_STATUS_REJECTED "$(status "$B")"
ctl interaction "$B" --kind mailing --direction outbound --notes "farewell letter + survey" \
    --at 2026-01-08T09:00:00Z --id b-farewell >/dev/null
expect_eq "farewell letter keeps it rejected" LEAD_STATUS_REJECTED "$(status "$B")"
expect_refusal 1 "FAILED_PRECONDITION: qualify_lead: lead $B is REJECTED; qualify is allowed only from NEW or CONTACTED" \
  ctl qualify "$B" --budget "EUR 1" --decision-maker x --need y --decision-by 2027-01-01
ctl reactivate "$B" --note "called back" --at 2026-02-01T09:00:00Z --id b-react1 >/dev/null
expect_eq "reactivation restores CONTACTED" LEAD_STATUS_CONTACTED "$(status "$B")"
expect_refusal 1 "INVALID_ARGUMENT: postpone_lead.revisit_at: 2026-01-01T00:00:00.000Z must be after the postponement itself" \
  ctl postpone "$B" --until 2026-01-01 --at 2026-02-02T09:00:00Z
ctl postpone "$B" --until 2026-06-01 --reason "budget in Q3" --at 2026-02-02T09:00:00Z --id b-postpone >/dev/null
expect_eq "postponed" LEAD_STATUS_POSTPONED "$(status "$B")"
expect_eq "revisit date kept" "2026-06-01T00:00:00Z" "$(ctl --json get "$B" | json revisit_at)"
expect_refusal 1 "INVALID_ARGUMENT: reactivate_lead.meta.occurred_at: 2026-02-01T12:00:00.000Z is before 2026-02-02T09:00:00.000Z, when the lead became POSTPONED" \
  ctl reactivate "$B" --at 2026-02-01T12:00:00Z
ctl reactivate "$B" --at 2026-06-01T09:00:00Z --id b-react2 >/dev/null
expect_eq "reactivated again" LEAD_STATUS_CONTACTED "$(status "$B")"

echo "== the other rules of design §3"
C=$(ctl --json capture --name "Cy Coder" --email cy@example.com --source web-form --at $T0 --id c-capture | json lead_id)
expect_refusal 1 "FAILED_PRECONDITION: change_stage: lead $C is NEW; a stage change is allowed only from QUALIFIED" \
  ctl stage "$C" closing
expect_refusal 1 "FAILED_PRECONDITION: convert_lead: lead $C is NEW; convert is allowed only from QUALIFIED" \
  ctl convert "$C" --deal "EUR 1" --invoice I-1 --account-owner bob
expect_refusal 1 "FAILED_PRECONDITION: reactivate_lead: lead $C is NEW; reactivate is allowed only from REJECTED, POSTPONED or DISQUALIFIED" \
  ctl reactivate "$C"
ctl qualify "$C" --budget "EUR 9000" --decision-maker x --need y --decision-by 2026-06-01 --at 2026-01-06T00:00:00Z --id c-q >/dev/null
expect_eq "qualified straight from NEW" LEAD_STATUS_QUALIFIED "$(status "$C")"
expect_refusal 1 "FAILED_PRECONDITION: disqualify_lead: lead $C is QUALIFIED; disqualify is allowed only from NEW or CONTACTED" \
  ctl disqualify "$C" --reason not-target-market
expect_refusal 1 "ABORTED: reject_lead: expected version 1 but lead $C is at version 2" \
  ctl reject "$C" --reason no-need --expect-version 1
expect_refusal 1 "$C is at version 2; look at it again (leadctl get) and retry with --expect-version 2" \
  ctl reject "$C" --reason no-need --expect-version 1
D=$(ctl --json capture --name "Dee Dupe" --email dee@example.com --source social --at $T0 --id d-capture | json lead_id)
ctl merge "$D" --into "$C" --at 2026-01-07T00:00:00Z --id d-merge >/dev/null
expect_eq "merged" LEAD_STATUS_MERGED "$(status "$D")"
expect_refusal 1 "FAILED_PRECONDITION: assign_lead: lead $D is MERGED, a terminal status; it was folded into lead $C" \
  ctl assign "$D" --owner bob
expect_refusal 1 "INVALID_ARGUMENT: capture_lead.person.full_name: required" \
  ctl capture --name " " --email x@example.com --source web-form
expect_refusal 1 "NOT_FOUND: log_interaction: lead ld_00000000000000000000 not found" \
  ctl interaction ld_00000000000000000000 --kind call --direction outbound
expect_refusal 2 "--kind: unknown value 'fax'" \
  ctl interaction "$C" --kind fax --direction outbound

echo "== restart: everything is still there"
stop_server
start_server --partitions 4
expect_eq "lead 1 after restart" LEAD_STATUS_CONVERTED "$(status "$A")"
expect_eq "lead 2 after restart" LEAD_STATUS_CONTACTED "$(status "$B")"
R=$(ctl --json reactivate "$B" --at 2026-06-01T09:00:00Z --id b-react2)
expect_eq "retry after restart replayed" True "$(json replayed <<<"$R")"
echo "lifecycle walk: all checks passed"
