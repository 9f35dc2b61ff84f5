// Package backup makes and restores one-file backups of a posgate data
// directory: a consistent online copy of the SQLite store (VACUUM INTO,
// taken while the daemon serves) together with the master key that opens
// its sealed secrets, in a gzip'd tar with a manifest of SHA-256 sums.
//
// It does not decide where backups go or how often: that is the operator's
// (a cron job or a systemd timer calling `posgate backup`). It refuses to
// restore over a data directory whose daemon is running, which it learns
// from the directory lock that `posgate serve` holds (store.LockDir).
package backup
