#!/bin/sh
# A private CA and leaf certificates for the dovecot and smtp containers,
# written once into the shared `certs` volume.
set -eu
cd /certs
[ -f ca.pem ] && exit 0
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=supportd compose CA" \
  -keyout ca.key -out ca.pem
for host in dovecot smtp; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$host" -keyout "$host.key" -out "$host.csr"
  printf 'subjectAltName=DNS:%s\n' "$host" > "$host.ext"
  openssl x509 -req -in "$host.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
    -extfile "$host.ext" -out "$host.pem"
done
# The system roots plus the compose CA, for supportd's SMTP client (SSL_CERT_FILE).
cat /etc/ssl/certs/ca-certificates.crt ca.pem > bundle.pem
chmod 0644 ./*.pem ./*.key
