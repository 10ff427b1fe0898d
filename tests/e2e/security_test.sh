#!/usr/bin/env bash
# Security as a user meets it (docs/security.md): the defaults (authentication on, a local admin
# token leadctl finds by itself, no TLS on loopback), a non-loopback listener refused without TLS
# and authentication, roles (analyst redaction, intake limits), TLS and mTLS (a client
# certificate mapped to a role; unknown certificates refused at the handshake), and the
# multi-process deployment (writer, lead view, gateway) on mTLS, where the caller's identity
# reaches the recorded actor through the gateway. Usage: security_test.sh LEADFLOW LEADCTL
LEADFLOW=$1 LEADCTL=$2
source "$(dirname "$0")/lib.sh"
SHARED_KEY=$LEADFLOW_AUTH_TOKEN_KEY_FILE
ADMIN_TOKEN=$LEADFLOW_TOKEN

# 1. Defaults: what `tools/dev.sh serve` does.
unset LEADFLOW_AUTH_TOKEN_KEY_FILE LEADFLOW_TOKEN
launch "$E2E_TMP/default.log" --data-dir "$E2E_TMP/d1"
D1=$LAUNCHED_ADDR
expect_contains "the start says where the admin token is" "$E2E_TMP/default.log" \
  "admin token for leadctl on this machine: $E2E_TMP/d1/auth/admin.token"
expect_contains "the banner says authentication is on" "$E2E_TMP/default.log" "authentication on"
expect_eq "admin token readable by the owner only" 600 "$(stat -c %a "$E2E_TMP/d1/auth/admin.token")"
expect_eq "token key readable by the owner only" 600 "$(stat -c %a "$E2E_TMP/d1/auth/token.key")"
(cd "$E2E_TMP" && "$LEADCTL" --server "$D1" --data-dir d1 --json capture --name "Ada Lovelace" \
  --email ada@example.com --source referral >"$E2E_TMP/ada.json")
LEAD=$(json lead_id <"$E2E_TMP/ada.json")
echo "ok: leadctl found the local admin token and captured $LEAD"
"$LEADCTL" --server "$D1" --data-dir "$E2E_TMP/d1" --json timeline "$LEAD" >"$E2E_TMP/tl.json"
expect_contains "the actor is the token's subject" "$E2E_TMP/tl.json" '"id": "local-admin"'
expect_refusal 1 "UNAUTHENTICATED" "$LEADCTL" --server "$D1" --data-dir "$E2E_TMP/nowhere" get "$LEAD"
expect_refusal 1 "give a token" "$LEADCTL" --server "$D1" --data-dir "$E2E_TMP/nowhere" get "$LEAD"
"$LEADCTL" --server "$D1" --data-dir "$E2E_TMP/nowhere" health >/dev/null
echo "ok: health needs no token"

# 2. A non-loopback listener without TLS is refused, unless --insecure.
rc=0; timeout 20 "$LEADFLOW" serve --listen 0.0.0.0:0 --data-dir "$E2E_TMP/d2" \
  >"$E2E_TMP/exposed.log" 2>&1 || rc=$?
expect_eq "serving 0.0.0.0 in clear is refused (exit 1)" 1 "$rc"
expect_contains "and says why" "$E2E_TMP/exposed.log" "is not a loopback address"
expect_contains "and how to go on" "$E2E_TMP/exposed.log" "--insecure"
"$LEADFLOW" serve --listen 0.0.0.0:0 --insecure --data-dir "$E2E_TMP/d2" >"$E2E_TMP/insecure.log" 2>&1 &
INSECURE_PID=$!
LAUNCHED_PIDS+=("$INSECURE_PID")
for _ in $(seq 1 100); do grep -q "serving gRPC on" "$E2E_TMP/insecure.log" && break; sleep 0.1; done
expect_contains "--insecure starts it" "$E2E_TMP/insecure.log" "serving gRPC on 0.0.0.0"
kill -TERM "$INSECURE_PID"; wait "$INSECURE_PID" || true

# 3. Roles, with a shared key as a deployment would configure it.
export LEADFLOW_AUTH_TOKEN_KEY_FILE=$SHARED_KEY
launch "$E2E_TMP/roles.log" --data-dir "$E2E_TMP/d3" --auth-admin-token-file -
R=$LAUNCHED_ADDR
SALES=$("$LEADFLOW" token issue --role sales --subject alice --ttl 1h --data-dir "$E2E_TMP/d3")
ANALYST=$("$LEADFLOW" token issue --role analyst --subject ann --ttl 1h --data-dir "$E2E_TMP/d3")
INTAKE=$("$LEADFLOW" token issue --role intake --subject webform --ttl 1h --data-dir "$E2E_TMP/d3")
"$LEADCTL" --server "$R" --token "$SALES" --actor "crm-user-7" --json capture --name "Grace Hopper" \
  --email grace@example.com --source referral >"$E2E_TMP/grace.json"
GRACE=$(json lead_id <"$E2E_TMP/grace.json")
"$LEADCTL" --server "$R" --token "$SALES" --json timeline "$GRACE" >"$E2E_TMP/gtl.json"
expect_contains "the sales caller is the actor" "$E2E_TMP/gtl.json" '"id": "alice"'
expect_contains "--actor is only a note" "$E2E_TMP/gtl.json" '"on_behalf_of": "crm-user-7"'
"$LEADCTL" --server "$R" --token "$ANALYST" --json get "$GRACE" >"$E2E_TMP/analyst.json"
expect_contains "an analyst sees the lead's status" "$E2E_TMP/analyst.json" '"status"'
if grep -q -e grace@example.com -e "Grace Hopper" "$E2E_TMP/analyst.json"; then
  echo "FAIL: an analyst saw personal data:"; cat "$E2E_TMP/analyst.json"; exit 1
fi
echo "ok: an analyst sees no name and no email"
expect_refusal 1 "PERMISSION_DENIED: role 'analyst' may not call leadflow.v1.LeadQueryService/FindLead" \
  "$LEADCTL" --server "$R" --token "$ANALYST" find --email grace@example.com
expect_refusal 1 "PERMISSION_DENIED: role 'analyst' may not run commands" \
  "$LEADCTL" --server "$R" --token "$ANALYST" capture --name X --email x@example.com --source referral
"$LEADCTL" --server "$R" --token "$INTAKE" capture --name "Web Form" --email form@example.com \
  --source web-form >/dev/null
echo "ok: intake captures"
expect_refusal 1 "PERMISSION_DENIED: role 'intake' may not run assign_lead" \
  "$LEADCTL" --server "$R" --token "$INTAKE" assign "$GRACE" --owner bob
BAD=$(printf '%s' "$SALES" | sed 's/.$/A/')
expect_refusal 1 "UNAUTHENTICATED: bearer token" "$LEADCTL" --server "$R" --token "$BAD" get "$GRACE"
if "$LEADCTL" --server "$R" --token "$BAD" get "$GRACE" 2>&1 | grep -q -F "$BAD"; then
  echo "FAIL: the refusal quotes the token"; exit 1
fi
echo "ok: a tampered token is refused without being quoted"

# The event stream, for downstream systems: their role reads it, others may not.
DOWN=$("$LEADFLOW" token issue --role downstream --subject mailer --ttl 1h --data-dir "$E2E_TMP/d3")
"$LEADCTL" --server "$R" --token "$DOWN" events >"$E2E_TMP/events.jsonl"
expect_eq "downstream streams every event (two captures)" 2 "$(grep -c '"leadCaptured"' "$E2E_TMP/events.jsonl")"
expect_contains "with its position" "$E2E_TMP/events.jsonl" '"position":{"partition":'
expect_refusal 1 "PERMISSION_DENIED: role 'sales' may not call leadflow.v1.EventStreamService/StreamEvents" \
  "$LEADCTL" --server "$R" --token "$SALES" events

# 4. TLS and mTLS: a CA, a server certificate for 127.0.0.1, client certificates.
PKI="$E2E_TMP/pki"; mkdir -p "$PKI"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -subj "/CN=leadflow-test-ca" 2>/dev/null
cert() {  # cert NAME CN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$PKI/$1.key" \
    -out "$PKI/$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' \
    >"$PKI/$1.ext"
  openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 1 -out "$PKI/$1.pem" -extfile "$PKI/$1.ext" 2>/dev/null
}
cert server leadflow-server
cert crm crm-connector
cert stranger stranger
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -keyout "$PKI/rogue.key" -out "$PKI/rogue.pem" -subj "/CN=crm-connector" 2>/dev/null
cat >"$E2E_TMP/policy.yaml" <<'YAML'
roles:
  admin:
    methods: ["*"]
    commands: ["*"]
  intake:
    commands: [capture_lead, record_inquiry]
certificates:
  crm-connector: intake
YAML
TLS=(--tls-cert-file "$PKI/server.pem" --tls-key-file "$PKI/server.key")
launch "$E2E_TMP/tls.log" --data-dir "$E2E_TMP/d4" "${TLS[@]}" \
  --tls-client-ca-file "$PKI/ca.pem" --auth-policy-file "$E2E_TMP/policy.yaml"
T=$LAUNCHED_ADDR
expect_contains "the banner says TLS with client certificates" "$E2E_TMP/tls.log" \
  "TLS, client certificates required"
LEADFLOW_TOKEN= "$LEADCTL" --server "$T" --data-dir "$E2E_TMP/nowhere" --ca "$PKI/ca.pem" \
  --cert "$PKI/crm.pem" --key "$PKI/crm.key" --json capture --name "Form Lead" \
  --email formlead@example.com --source web-form >"$E2E_TMP/form.json"
FORM=$(json lead_id <"$E2E_TMP/form.json")
"$LEADCTL" --server "$T" --ca "$PKI/ca.pem" --cert "$PKI/crm.pem" --key "$PKI/crm.key" \
  --token "$ADMIN_TOKEN" --json timeline "$FORM" >"$E2E_TMP/ftl.json"
expect_contains "the certificate's name is the actor" "$E2E_TMP/ftl.json" '"id": "crm-connector"'
expect_contains "recorded as a system" "$E2E_TMP/ftl.json" '"kind": "KIND_SYSTEM"'
expect_refusal 1 "UNAUTHENTICATED: client certificate 'stranger' has no role" \
  env LEADFLOW_TOKEN= "$LEADCTL" --server "$T" --data-dir "$E2E_TMP/nowhere" --ca "$PKI/ca.pem" \
  --cert "$PKI/stranger.pem" --key "$PKI/stranger.key" get "$FORM"
expect_refusal 3 "UNAVAILABLE" "$LEADCTL" --server "$T" --timeout 5 --ca "$PKI/ca.pem" get "$FORM"
echo "ok: no client certificate: refused at the handshake"
expect_refusal 3 "UNAVAILABLE" "$LEADCTL" --server "$T" --timeout 5 --ca "$PKI/ca.pem" \
  --cert "$PKI/rogue.pem" --key "$PKI/rogue.key" get "$FORM"
echo "ok: a self-signed certificate with a known name: refused at the handshake"
expect_refusal 3 "UNAVAILABLE" "$LEADCTL" --server "$T" --timeout 5 get "$FORM"
echo "ok: plaintext to the TLS port fails"

# 5. One process per role on mTLS: writer (hosting the Kafka mock), lead view, gateway. The
# gateway checks the others' certificates against the CA and presents its own.
MTLS=("${TLS[@]}" --tls-client-ca-file "$PKI/ca.pem")
launch "$E2E_TMP/writer.log" --kafka-mock --role writer --partitions 2 \
  --data-dir "$E2E_TMP/writer" "${MTLS[@]}"
WRITER=$LAUNCHED_ADDR
BOOTSTRAP=$(mock_bootstrap "$E2E_TMP/writer.log")
launch "$E2E_TMP/leadview.log" --role lead-view --kafka-brokers "$BOOTSTRAP" --partitions 2 \
  --data-dir "$E2E_TMP/leadview" "${MTLS[@]}"
LEADVIEW=$LAUNCHED_ADDR
launch "$E2E_TMP/gateway.log" --role gateway --gateway-writer "$WRITER" \
  --gateway-lead-view "$LEADVIEW" "${MTLS[@]}" --tls-ca-file "$PKI/ca.pem"
GATEWAY=$LAUNCHED_ADDR
via_gateway() {
  "$LEADCTL" --server "$GATEWAY" --ca "$PKI/ca.pem" --cert "$PKI/crm.pem" --key "$PKI/crm.key" \
    --token "$SALES" "$@"
}
via_gateway --json capture --name "Katherine Johnson" --email kj@example.com --source referral \
  >"$E2E_TMP/kj.json"
KJ=$(json lead_id <"$E2E_TMP/kj.json")
for _ in $(seq 1 50); do via_gateway --json timeline "$KJ" >"$E2E_TMP/kjtl.json" 2>/dev/null && break; sleep 0.2; done
expect_contains "through the gateway, the caller is the recorded actor" "$E2E_TMP/kjtl.json" \
  '"id": "alice"'
expect_refusal 1 "UNAUTHENTICATED" "$LEADCTL" --server "$GATEWAY" --ca "$PKI/ca.pem" \
  --cert "$PKI/crm.pem" --key "$PKI/crm.key" --token "$BAD" get "$KJ"
echo "ok: the backends verify the forwarded token themselves"
expect_refusal 3 "UNAVAILABLE" "$LEADCTL" --server "$WRITER" --timeout 5 --token "$SALES" get "$KJ"
echo "ok: the writer takes no plaintext either"
echo "PASS"
