#!/usr/bin/env bash
# The writer and the views in separate processes, sharing a Kafka topic (the mock cluster the
# writer process hosts, over loopback TCP): commands go to one, queries to the other.
# Usage: roles_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"

start_server --kafka-mock --role writer --partitions 4
WRITER=$SERVER
BOOTSTRAP=$(mock_bootstrap "$SERVE_LOG")
launch "$E2E_TMP/views.log" --role views --kafka-brokers "$BOOTSTRAP" --partitions 4 \
  --data-dir "$E2E_TMP/views-data"
VIEWS=$LAUNCHED_ADDR
echo "ok: writer at $WRITER, views at $VIEWS, Kafka at $BOOTSTRAP"

w() { "$LEADCTL" --server "$WRITER" --actor e2e "$@"; }
v() { "$LEADCTL" --server "$VIEWS" "$@"; }

ID=$(w --json capture --name "Ada Lovelace" --email ada@example.com --source referral | json lead_id)
w assign "$ID" --owner bob >/dev/null
w interaction "$ID" --kind call --direction outbound --outcome connected >/dev/null
# Fresh reads: the views process waits until it has applied the topic as of the query.
expect_eq "status seen by the views process" LEAD_STATUS_CONTACTED "$(v --json get "$ID" | json status)"
expect_eq "owner seen by the views process" bob "$(v --json get "$ID" | json owner)"
expect_eq "timeline length" 3 "$(v --json timeline "$ID" | grep -c '"event_id"')"
# The analytics views run in the views process too, from the same topic.
B=$(w --json capture --name "Bob Byte" --email bob@example.com --source web-form | json lead_id)
TODAY=$(date -u +%Y-%m-%d); TOMORROW=$(date -u -d tomorrow +%Y-%m-%d)
w postpone "$B" --until "$TOMORROW" --reason "after the fair" >/dev/null
COHORT=$(v --json funnel cohort --from "$TODAY" --to "$TOMORROW")
expect_eq "funnel in the views process: captured" 2 "$(json total.captured <<<"$COHORT")"
expect_eq "funnel in the views process: contacted" 1 "$(json total.contacted <<<"$COHORT")"
expect_eq "re-contact queue in the views process" 1 \
  "$(v --json queue --as-of "$(date -u -d '+2 days' +%Y-%m-%d)" | grep -c '"lead_id"')"

expect_refusal 1 "UNIMPLEMENTED" v capture --name X --email x@example.com --source web-form
expect_refusal 1 "UNIMPLEMENTED" w get "$ID"
rc=0; "$LEADFLOW" serve --role views --data-dir "$E2E_TMP/x" --listen 127.0.0.1:0 2>"$E2E_TMP/err.txt" || rc=$?
expect_eq "views without Kafka refused" 2 "$rc"
expect_contains "views without Kafka: the reason is given" "$E2E_TMP/err.txt" \
  "role=views: needs a shared log, kafka.brokers (--kafka-brokers) or kafka.mock"
echo "roles test: all checks passed"
