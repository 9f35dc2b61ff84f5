// Command testprogress runs `go test -json …` and prints what a
// non-verbose `go test` prints (the `ok`/`FAIL` line of each package, and
// the output of each failed test), plus a progress line every
// -every (default 30 s) naming the packages still running and for how
// long, so a slow or hung package is visible long before go test's
// -timeout. A line a test writes to stdout starting with "SUMMARY " (the
// power-cut suites' result lines) is printed as it comes, passed or not.
// It exits with go test's status. `make test` uses it.
//
// Usage: go run ./internal/testprogress [-every 30s] go test -json [flags] [packages]
package main
