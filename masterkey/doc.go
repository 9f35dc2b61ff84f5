// Package masterkey owns the local master key file and seals small secrets
// under it with AES-256-GCM: API client secrets (for the signed request
// mode), webhook secrets and certificate private keys.
//
// The key file sits in the data directory, 0600, apart from the database,
// so a copy of the database alone reveals no secret. It does not protect
// against an attacker who can read the whole data directory; a TPM- or
// PKCS#11-backed key can replace the file behind the same Seal/Open API.
package masterkey
