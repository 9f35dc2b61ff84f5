// Package doctor runs posgate's self-checks: each check is one line,
// ok, warn or fail, so an installer or a service technician sees at once
// what is wrong (store, master key, devices, certificates, tax service,
// webhook endpoints, clock). cmd/posgate's `doctor` subcommand gathers the
// inputs from the configuration and prints the results.
package doctor
