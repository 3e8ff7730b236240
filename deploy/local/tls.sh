#!/usr/bin/env bash
# A private certificate authority and the certificates of the local stack,
# made with the openssl command: `./polycrud up --tls` and the TLS tests use
# it. Idempotent: the CA is made once and kept (clients trust it), the
# server and client certificates are made again when missing, when they were
# not signed by this CA, or when they expire within 30 days.
set -euo pipefail

readonly PROG=tls.sh
readonly CA_DAYS=3650
readonly LEAF_DAYS=397
readonly RENEW_BEFORE_S=$((30 * 24 * 3600))

usage() {
  cat <<'USAGE'
Usage: tls.sh DIR

Makes, in DIR (created with mode 0700 if needed):
  ca.pem, ca.key          a private CA (ECDSA P-256, 10 years); ca.pem is public
  server.pem, server.key  a server certificate for localhost and 127.0.0.1,
                          signed by the CA (397 days), with the CA after it
  client.pem, client.key  a client certificate ("polycrud client") signed by
                          the CA, for mutual TLS
Keys are mode 0600. Run again: keeps what is valid, renews what expires
within 30 days.
USAGE
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

# valid_leaf NAME: NAME.pem exists, was signed by this CA and lasts 30 more days.
valid_leaf() {
  [[ -s $dir/$1.pem && -s $dir/$1.key ]] &&
    openssl verify -CAfile "$dir/ca.pem" "$dir/$1.pem" >/dev/null 2>&1 &&
    openssl x509 -checkend "$RENEW_BEFORE_S" -noout -in "$dir/$1.pem" >/dev/null
}

# make_leaf NAME SUBJECT EXTENSIONS
make_leaf() {
  local name=$1 subject=$2 extensions=$3 tmp
  tmp=$(mktemp -d "$dir/.make.XXXXXX")
  (
    umask 077
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$tmp/key" -subj "$subject" -out "$tmp/csr" 2>/dev/null
    printf '%s\n' "$extensions" >"$tmp/ext"
    openssl x509 -req -in "$tmp/csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
      -CAcreateserial -CAserial "$dir/ca.srl" -days "$LEAF_DAYS" -sha256 \
      -extfile "$tmp/ext" -out "$tmp/crt" 2>/dev/null
  ) || {
    rm -rf "$tmp"
    die "cannot make the $name certificate"
  }
  cat "$tmp/crt" "$dir/ca.pem" >"$tmp/chain"
  chmod 0644 "$tmp/chain"
  mv "$tmp/key" "$dir/$name.key"
  mv "$tmp/chain" "$dir/$name.pem"
  rm -rf "$tmp"
  echo "$PROG: made $dir/$name.pem"
}

case ${1:-} in
  -h | --help)
    usage
    exit 0
    ;;
  '' | -*)
    usage >&2
    exit 2
    ;;
esac
[[ $# -eq 1 ]] || {
  usage >&2
  exit 2
}
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"
dir=$1
mkdir -p "$dir"
chmod 0700 "$dir"

if [[ ! -s $dir/ca.pem || ! -s $dir/ca.key ]]; then
  (
    umask 077
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/ca.key" -subj "/CN=polycrud local CA" -days "$CA_DAYS" -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$dir/ca.pem" 2>/dev/null
  ) || die "cannot make the CA"
  chmod 0644 "$dir/ca.pem"
  rm -f "$dir/server.pem" "$dir/client.pem"
  echo "$PROG: made the CA $dir/ca.pem"
fi
valid_leaf server || make_leaf server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
valid_leaf client || make_leaf client "/CN=polycrud client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
