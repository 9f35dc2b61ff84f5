#!/bin/sh
# Regenerates the PKCS#12 test files with OpenSSL 3's default (AES) encryption.
# Run from fiscal/testdata. Needs go and openssl >= 3.
set -eu
go run ./mkcert 2026-01-01 2046-01-01 openssl3-aes.crt.pem
openssl pkcs12 -export -inkey me-spec-v5-example-key.pem -in openssl3-aes.crt.pem \
	-name "posgate test taxpayer" -passout pass:posgate-test -out openssl3-aes.p12
go run ./mkcert 2020-01-01 2021-01-01 expired.crt.pem
openssl pkcs12 -export -inkey me-spec-v5-example-key.pem -in expired.crt.pem \
	-passout pass:posgate-test -out expired.p12
rm expired.crt.pem
openssl pkcs12 -info -in openssl3-aes.p12 -passin pass:posgate-test -noout 2>&1 | head -3
