package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/store/storetest"
)

// holdWriter makes db's writer run a transaction that blocks until the
// returned release is called, so what the test queues meanwhile lands in
// the following batches. It returns once the writer is inside.
func holdWriter(t *testing.T, db *store.DB) (release func() error) {
	t.Helper()
	inside := make(chan struct{})
	gate := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.InTx(context.Background(), func(tx *sql.Tx) error {
			close(inside)
			<-gate
			return nil
		})
	}()
	select {
	case <-inside:
	case <-time.After(10 * time.Second):
		t.Fatal("writer never ran the holding transaction")
	}
	var (
		once sync.Once
		err  error
	)
	release = func() error {
		once.Do(func() {
			close(gate)
			err = <-done
		})
		return err
	}
	t.Cleanup(func() { _ = release() })
	return release
}

// waitQueued waits until n transactions wait for the writer.
func waitQueued(t *testing.T, db *store.DB, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for store.Queued(db) < n {
		if time.Now().After(deadline) {
			t.Fatalf("queued=%d, want %d", store.Queued(db), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func openWith(t *testing.T, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "posgate.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

func createTable(t *testing.T, db *store.DB, name string) {
	t.Helper()
	if _, err := db.Write.Exec("CREATE TABLE " + name + " (x INTEGER PRIMARY KEY) STRICT"); err != nil {
		t.Fatal(err)
	}
}

func present(t *testing.T, db *store.DB, table string) map[int]bool {
	t.Helper()
	rows, err := db.Read.Query("SELECT x FROM " + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]bool{}
	for rows.Next() {
		var x int
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		got[x] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// Many callers share commits; one that fails or panics loses exactly its
// own rows, every other caller's rows are committed, and the transactions
// really were grouped (fewer batches than transactions).
func TestGroupCommitIsolatesFailures(t *testing.T) {
	// No time bound on a batch, so the count of batches is exact.
	db := openWith(t, store.Options{MaxBatchTime: time.Hour})
	createTable(t, db, "g")
	ctx := context.Background()
	const n = 300
	boom := errors.New("boom")

	release := holdWriter(t, db)
	b0, tx0 := store.GroupStats(db)
	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = db.InTx(ctx, func(tx *sql.Tx) error {
				// Two rows each, so a half-applied failure would show.
				if _, err := tx.ExecContext(ctx, "INSERT INTO g VALUES (?), (?)", 2*i, 2*i+1); err != nil {
					return err
				}
				switch {
				case i%7 == 3:
					panic(fmt.Sprint("panic ", i))
				case i%5 == 1:
					return fmt.Errorf("caller %d: %w", i, boom)
				case i%11 == 5:
					// A constraint error in the caller's own SQL.
					_, err := tx.ExecContext(ctx, "INSERT INTO g VALUES (?)", 2*i)
					return err
				}
				return nil
			})
		})
	}
	waitQueued(t, db, n)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	got := present(t, db, "g")
	for i := range n {
		failing := i%7 == 3 || i%5 == 1 || i%11 == 5
		switch {
		case i%7 == 3:
			if panics[i] != fmt.Sprint("panic ", i) {
				t.Errorf("caller %d: recovered %v, want its own panic", i, panics[i])
			}
		case i%5 == 1:
			if !errors.Is(errs[i], boom) {
				t.Errorf("caller %d: err=%v, want boom", i, errs[i])
			}
		case i%11 == 5:
			if errs[i] == nil {
				t.Errorf("caller %d: constraint error was lost", i)
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("caller %d: err=%v panic=%v, want success", i, errs[i], panics[i])
			}
		}
		if got[2*i] == failing || got[2*i+1] == failing {
			t.Errorf("caller %d (failing=%v): rows present %v %v", i, failing, got[2*i], got[2*i+1])
		}
	}
	b1, tx1 := store.GroupStats(db)
	batches, txs := b1-b0, tx1-tx0
	if txs != n {
		t.Errorf("ran %d transactions, want %d", txs, n)
	}
	// n queued ones in batches of at most 64.
	if want := int64((n + 63) / 64); batches > want {
		t.Errorf("%d transactions took %d batches, want at most %d", txs, batches, want)
	}
}

// A failed commit fails every caller of its batch, and none of their
// rows is there; the next batch commits normally.
func TestGroupCommitFailureFailsWholeBatch(t *testing.T) {
	db := storetest.Open(t)
	createTable(t, db, "f")
	ctx := context.Background()
	release := holdWriter(t, db)
	full := errors.New("database or disk is full")
	store.SetCommitHook(db, func(tx *sql.Tx) error {
		_ = tx.Rollback()
		return full
	})
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = db.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO f VALUES (?)", i)
				return err
			})
		})
	}
	waitQueued(t, db, n)
	// The holding batch itself commits with the failing hook too.
	if err := release(); !errors.Is(err, full) {
		t.Errorf("holding transaction: err=%v, want the commit's error", err)
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, full) {
			t.Errorf("caller %d: err=%v, want the commit's error", i, err)
		}
	}
	if got := present(t, db, "f"); len(got) != 0 {
		t.Fatalf("rows %v of a failed commit are present", got)
	}
	store.SetCommitHook(db, nil)
	if err := db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO f VALUES (1000)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := present(t, db, "f"); !got[1000] || len(got) != 1 {
		t.Fatalf("after recovery rows=%v, want only 1000", got)
	}
}

// orderLog records the order in which transactions ran.
type orderLog struct {
	mu    sync.Mutex
	order []string
}

func (o *orderLog) add(name string) {
	o.mu.Lock()
	o.order = append(o.order, name)
	o.mu.Unlock()
}

func (o *orderLog) get() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.order)
}

// The API's writes go before the relay's low-priority bookkeeping that was
// queued earlier, and the bookkeeping still runs.
func TestLowPriorityGoesAfterOthers(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	release := holdWriter(t, db)
	var ord orderLog
	record := func(name string) func(*sql.Tx) error {
		return func(*sql.Tx) error { ord.add(name); return nil }
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := db.InTx(store.WithLowPriority(ctx), record("low")); err != nil {
			t.Error(err)
		}
	})
	waitQueued(t, db, 1)
	for i := range 3 {
		wg.Go(func() {
			if err := db.InTx(ctx, record(fmt.Sprint("high", i))); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db, 4)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if order := ord.get(); len(order) != 4 || order[3] != "low" {
		t.Fatalf("order %v, want the three high ones before low", order)
	}
}

// A till's write that arrives while the writer runs a batch of the
// relay's bookkeeping goes right after the bookkeeping already run, not
// after the whole batch (issue 17 part 3: payment first byte during a
// drain).
func TestHighCutsLowBatch(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	release := holdWriter(t, db)
	var ord orderLog
	record := ord.add
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			err := db.InTx(store.WithLowPriority(ctx), func(*sql.Tx) error {
				record(fmt.Sprint("low", i))
				if i == 0 {
					// The high one is queued while this batch runs.
					wg.Go(func() {
						if err := db.InTx(ctx, func(*sql.Tx) error { record("high"); return nil }); err != nil {
							t.Error(err)
						}
					})
					// The other two are in this batch already, so the
					// queue holds only the high one. (No t.Fatal here:
					// this runs on the writer goroutine.)
					for deadline := time.Now().Add(10 * time.Second); store.Queued(db) < 1 && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
				}
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
		waitQueued(t, db, i+1)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want, order := []string{"low0", "high", "low1", "low2"}, ord.get(); !slices.Equal(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
}

// A caller whose ctx ends while it waits in the queue leaves with the
// ctx's error, and its fn never runs.
func TestCancelledWhileQueued(t *testing.T) {
	db := storetest.Open(t)
	release := holdWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- db.InTx(ctx, func(*sql.Tx) error { ran <- struct{}{}; return nil })
	}()
	waitQueued(t, db, 1)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err=%v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled caller still waits")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	// The writer skips it: a later transaction runs, the cancelled never.
	if err := db.InTx(context.Background(), func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Fatal("fn of a cancelled caller ran")
	default:
	}
}

// Close commits what is queued; InTx after Close fails with ErrClosed.
func TestCloseDrainsQueue(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), dir+"/p.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	createTable(t, db, "q")
	release := holdWriter(t, db)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if err := db.InTx(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec("INSERT INTO q VALUES (?)", i)
				return err
			}); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db, 5)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	err = store.InTx(context.Background(), db.Write, func(*sql.Tx) error { return nil })
	if err == nil {
		t.Fatal("InTx after Close succeeded")
	}
	db2, err := store.Open(context.Background(), dir+"/p.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := present(t, db2, "q"); len(got) != 5 {
		t.Fatalf("rows after close %v, want 5", got)
	}
}

// A caller's ctx cancelled in the middle of its INSERT makes SQLite roll
// back the whole shared transaction. That is the one case where a caller
// affects others: those that ran before it in the batch fail with
// ErrBatchAborted and none of their rows is there (never a false
// success); those queued after it commit in the next batch.
func TestInterruptedCallerAbortsItsBatchHonestly(t *testing.T) {
	db := storetest.Open(t)
	createTable(t, db, "i")
	release := holdWriter(t, db)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range 3 {
		wg.Go(func() {
			c := context.Background()
			if i == 1 {
				c = ctx
			}
			errs[i] = db.InTx(c, func(tx *sql.Tx) error {
				if i == 1 {
					// A long INSERT, cancelled while it runs.
					time.AfterFunc(50*time.Millisecond, cancel)
					_, err := tx.ExecContext(c, `INSERT INTO i WITH RECURSIVE r(x) AS
						(SELECT 1000 UNION ALL SELECT x+1 FROM r WHERE x < 1000000000) SELECT x FROM r`)
					return err
				}
				_, err := tx.ExecContext(c, "INSERT INTO i VALUES (?)", i)
				return err
			})
		})
		waitQueued(t, db, i+1) // queued in this order
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(errs[0], store.ErrBatchAborted) {
		t.Errorf("caller before the interrupted one: err=%v, want ErrBatchAborted", errs[0])
	}
	if errs[1] == nil {
		t.Error("interrupted caller succeeded")
	}
	if errs[2] != nil {
		t.Errorf("caller after the interrupted one: %v", errs[2])
	}
	if got := present(t, db, "i"); len(got) != 1 || !got[2] {
		t.Fatalf("rows %v, want only caller 2's", got)
	}
}

// A batch stops taking transactions after MaxBatchTime: slow callers do
// not keep the ones before them waiting for the commit.
func TestBatchTimeBound(t *testing.T) {
	db := openWith(t, store.Options{MaxBatchTime: 20 * time.Millisecond})
	createTable(t, db, "s")
	release := holdWriter(t, db)
	b0, _ := store.GroupStats(db)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			err := db.InTx(context.Background(), func(tx *sql.Tx) error {
				time.Sleep(15 * time.Millisecond)
				_, err := tx.Exec("INSERT INTO s VALUES (?)", i)
				return err
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, db, 5)
	if err := release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// 15 ms each against a 20 ms bound: at most two per batch.
	if b1, _ := store.GroupStats(db); b1-b0 < 3 {
		t.Fatalf("5 slow transactions took %d batches, want at least 3", b1-b0)
	}
	if got := present(t, db, "s"); len(got) != 5 {
		t.Fatalf("rows %v, want 5", got)
	}
}

// Busy is true while a foreground write is in flight and for BusyLinger
// after, never for low-priority (relay) writes; WithQueued's hook runs
// once the transaction is queued, and queued transactions run in order.
func TestBusyAndQueued(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	if db.Busy() {
		t.Fatal("busy before any write")
	}
	if err := db.InTx(store.WithLowPriority(ctx), func(*sql.Tx) error {
		if db.Busy() {
			t.Error("busy during a low-priority write")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	inside := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = db.InTx(ctx, func(*sql.Tx) error {
			close(inside)
			<-release
			return nil
		})
	})
	<-inside
	if !db.Busy() {
		t.Error("not busy during a foreground write")
	}
	// Queued behind the held writer, in the order their hooks ran.
	var (
		mu    sync.Mutex
		order []int
	)
	for i := range 3 {
		q := make(chan struct{})
		wg.Go(func() {
			_ = db.InTx(store.WithQueued(ctx, func() { close(q) }), func(*sql.Tx) error {
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				return nil
			})
		})
		select {
		case <-q:
		case <-time.After(5 * time.Second):
			t.Fatal("WithQueued's hook did not run")
		}
	}
	close(release)
	wg.Wait()
	if fmt.Sprint(order) != "[0 1 2]" {
		t.Fatalf("ran in order %v, want the queue's [0 1 2]", order)
	}
	time.Sleep(2 * store.BusyLinger)
	if db.Busy() {
		t.Fatal("still busy after the linger")
	}
}
