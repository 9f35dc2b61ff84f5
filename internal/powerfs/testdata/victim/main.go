// Command victim is the power-cut tests' SQLite child. It is built
// without -race (a race-instrumented child is 10-25x slower here) and
// run on the powerfs mount, never by the process serving it.
//
//	victim insert DB store|normal ROWS  inserts ROWS rows, one transaction each,
//	                                    printing "acked ID" once each commit returned
//	                                    (a failed commit is reported on stderr, and skipped)
//	victim check DB [TABLE]             opens DB read-write, so SQLite's recovery runs,
//	                                    and prints integrity_check and TABLE's ids as JSON
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/posgate/posgate/store"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "victim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	switch {
	case len(args) == 4 && args[0] == "insert":
		rows, err := strconv.Atoi(args[3])
		if err != nil {
			return fmt.Errorf("rows: %w", err)
		}
		return insert(args[1], args[2], rows, stdout)
	case (len(args) == 2 || len(args) == 3) && args[0] == "check":
		table := ""
		if len(args) == 3 {
			table = args[2]
		}
		return check(args[1], table, stdout)
	}
	return errors.New("usage: victim insert DB store|normal ROWS | victim check DB [TABLE]")
}

// insert opens path as mode says: "store" is store.Open, the daemon's
// DSN; "normal" is WAL with synchronous=NORMAL in the DSN.
func insert(path, mode string, rows int, stdout io.Writer) error {
	ctx := context.Background()
	var db *sql.DB
	switch mode {
	case "store":
		s, err := store.Open(ctx, path, store.Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		db = s.Write
	case "normal":
		var err error
		db, err = sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000")
		if err != nil {
			return err
		}
		defer db.Close()
	default:
		return fmt.Errorf("mode %q: want store or normal", mode)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS victim (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	for i := 1; i <= rows; i++ {
		err := store.InTx(ctx, db, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO victim (id, v) VALUES (?, ?)", i, strings.Repeat("v", 100))
			return err
		})
		if err != nil {
			// Like the daemon, answer this one with an error and go on.
			fmt.Fprintf(os.Stderr, "failed %d: %v\n", i, err)
			continue
		}
		// Flushed per row: an ack the parent has not read is no ack.
		fmt.Fprintf(w, "acked %d\n", i)
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// result is what check prints.
type result struct {
	Integrity string  `json:"integrity"`
	IDs       []int64 `json:"ids"`
}

// check reports PRAGMA integrity_check and the ids in table (none if the
// table is missing, which is what a lost CREATE TABLE looks like).
func check(path, table string, stdout io.Writer) error {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var res result
	lines, err := strings1(ctx, db, "PRAGMA integrity_check")
	if err != nil {
		res.Integrity = err.Error()
	} else {
		res.Integrity = strings.Join(lines, "; ")
	}
	if table != "" && res.Integrity == "ok" {
		ids, err := strings1(ctx, db, "SELECT id FROM "+table+" ORDER BY id")
		if err != nil && !strings.Contains(err.Error(), "no such table") {
			return err
		}
		for _, s := range ids {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return err
			}
			res.IDs = append(res.IDs, id)
		}
	}
	return json.NewEncoder(stdout).Encode(res)
}

// strings1 returns the first column of every row, as text.
func strings1(ctx context.Context, db *sql.DB, query string) ([]string, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
