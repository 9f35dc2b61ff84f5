package store

import "database/sql"

// SetCommitHook makes db's group commits end with f instead of
// tx.Commit; nil restores Commit.
func SetCommitHook(db *DB, f func(*sql.Tx) error) {
	if f == nil {
		db.group.commitHook.Store(nil)
		return
	}
	db.group.commitHook.Store(&f)
}

// GroupStats returns how many batches and transactions db's writer ran.
func GroupStats(db *DB) (batches, txs int64) {
	return db.group.batches.Load(), db.group.txs.Load()
}

// Queued returns how many transactions wait for db's writer.
func Queued(db *DB) int {
	db.group.mu.Lock()
	defer db.group.mu.Unlock()
	return len(db.group.high) + len(db.group.low)
}

// Checkpoints returns how many background checkpoints db's checkpointer
// ran and how many failed; -1, -1 without one.
func Checkpoints(db *DB) (runs, failed int64) {
	if db.group == nil || db.group.ckpt == nil {
		return -1, -1
	}
	return db.group.ckpt.runs.Load(), db.group.ckpt.failed.Load()
}

// SetRestartFrames sets the WAL size (frames) at which db's writer
// restarts the WAL after a background checkpoint.
func SetRestartFrames(db *DB, n int) { db.group.ckpt.restartAt = n }

// WALRestarts returns how many times db's writer caught up for a WAL
// restart, and the WAL's frames at the last background checkpoint.
func WALRestarts(db *DB) (restarts, lastLog int64) {
	return db.group.ckpt.restarts.Load(), db.group.ckpt.lastLog.Load()
}

// SetCheckpointFrames sets how many WAL frames must wait before db's
// checkpointer runs.
func SetCheckpointFrames(db *DB, n int) { db.group.ckpt.checkpointAt = n }

// WALWaiting returns how many WAL frames of db wait for a checkpoint,
// read from the WAL index as the checkpointer reads it.
func WALWaiting(db *DB) (int, bool) { return db.group.ckpt.waiting() }
