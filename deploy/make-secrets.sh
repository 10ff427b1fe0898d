#!/usr/bin/env bash
# Makes the secrets a leadflow deployment needs, into deploy/secrets/ (never committed):
#   ca.pem, ca.key          a private CA for the deployment (keep ca.key offline)
#   server.pem, server.key  the certificate every leadflow process serves and presents to the
#                           others (names: each role's service name, localhost, 127.0.0.1)
#   client.pem, client.key  a client certificate for leadctl / integrations (CN=operator)
#   token.key               the shared secret that signs and checks bearer tokens (HS256)
#   kek                     the key-encryption key wrapping every lead's data key (erasure by
#                           crypto-shredding): back it up apart from the data; losing it loses
#                           every personal field in the log
# Then mint tokens with it, e.g.:
#   leadflow token issue --auth-token-key-file deploy/secrets/token.key --role admin --subject ops
# Kubernetes: kubectl -n leadflow create secret generic leadflow-tls --from-file=deploy/secrets/
# (docs/security.md: rotation and what each file protects). Usage: deploy/make-secrets.sh [DIR]
set -euo pipefail
OUT=${1:-$(dirname "$0")/secrets}
mkdir -p "$OUT"
chmod 700 "$OUT"
cd "$OUT"
if [ -e token.key ]; then
  echo "$OUT already holds secrets; remove them first to make new ones" >&2
  exit 1
fi
umask 077
NAMES="DNS:localhost,IP:127.0.0.1"
for role in writer lead-view customer-view funnel-view reprocessing-view gateway; do
  NAMES="$NAMES,DNS:$role,DNS:leadflow-$role,DNS:leadflow-$role.leadflow.svc"
done
NAMES="$NAMES,DNS:leadflow,DNS:leadflow.leadflow.svc"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
  -keyout ca.key -out ca.pem -subj "/CN=leadflow deployment CA" 2>/dev/null
issue() {  # issue NAME CN SAN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
    -out "$1.pem" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server leadflow "$NAMES"
issue client operator "DNS:operator"
python3 -c 'import secrets; print(secrets.token_hex(32))' >token.key
python3 -c 'import secrets; print(secrets.token_hex(32))' >kek
chmod 644 ca.pem server.pem client.pem
# The containers run as user 10001: the files they read must be readable by it.
chmod 644 server.key token.key kek
echo "secrets written to $OUT: ca.pem server.pem server.key client.pem client.key token.key kek"
