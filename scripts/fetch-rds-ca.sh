#!/usr/bin/env bash
# Fetches the Amazon RDS CA bundle from AWS's trust store and checks it
# before it is used to verify Aurora's certificate (sslmode=verify-full):
# every certificate is an unexpired CA of Amazon RDS, at least ten of them,
# no private key. The Dockerfile runs the same checks for the image's copy.
#
#   scripts/fetch-rds-ca.sh OUT.pem
#
# RDS_CA_URL overrides the source (tests point it at a local file:// URL).
set -euo pipefail
out="${1:?usage: fetch-rds-ca.sh OUT.pem}"
url="${RDS_CA_URL:-https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

case "$url" in
  https://*) curl --proto '=https' --tlsv1.2 --fail --silent --show-error --location -o "$work/bundle.pem" "$url" ;;
  file://*) cp "${url#file://}" "$work/bundle.pem" ;;
  *) echo "fetch-rds-ca: refusing $url (https:// or file:// only)" >&2; exit 2 ;;
esac

if grep -q 'PRIVATE KEY' "$work/bundle.pem"; then
  echo "fetch-rds-ca: the bundle holds a private key" >&2; exit 1
fi
(cd "$work" && csplit --quiet --elide-empty-files --prefix=cert- bundle.pem '/-----BEGIN CERTIFICATE-----/' '{*}')
count=0
for cert in "$work"/cert-*; do
  grep -q 'BEGIN CERTIFICATE' "$cert" || continue
  openssl x509 -in "$cert" -noout -checkend 0 >/dev/null \
    || { echo "fetch-rds-ca: an expired certificate" >&2; exit 1; }
  openssl x509 -in "$cert" -noout -subject | grep -q 'Amazon RDS' \
    || { echo "fetch-rds-ca: a certificate that is not an Amazon RDS CA: $(openssl x509 -in "$cert" -noout -subject)" >&2; exit 1; }
  openssl x509 -in "$cert" -noout -ext basicConstraints 2>/dev/null | grep -q 'CA:TRUE' \
    || { echo "fetch-rds-ca: a certificate that is not a CA" >&2; exit 1; }
  count=$((count + 1))
done
if [ "$count" -lt "${RDS_CA_MIN_CERTS:-10}" ]; then
  echo "fetch-rds-ca: only $count certificates" >&2; exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$work/bundle.pem" "$out"
echo "fetch-rds-ca: $count Amazon RDS CA certificates in $out"
