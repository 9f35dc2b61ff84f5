package outbox

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/posgate/posgate/store"
	"github.com/posgate/posgate/webhook"
)

// bodyRoom is how many bytes a claim leaves in front of each event's data
// for the envelope's head (webhook.AppendBodyHead). A first attempt's
// head, with an event type and store id of usual length, takes about 200;
// a longer one (a retry carrying its last error) is built in a new slice.
const bodyRoom = 256

// claimCols are the claim statements' columns, in claimRow's order. The
// last is the event's data framed for the body: bodyRoom zero bytes, the
// data (`{}` when empty, as webhook.AppendBody writes it), and the
// envelope's closing brace. SQLite builds that in its own memory; the
// driver copies it once into a new Go slice; placeBody writes the head
// into the room. The body is that slice: no second 1.3 KiB copy and
// allocation per delivery, as building it around the data in Go took.
// (`||` on a BLOB concatenates its bytes as they are; CAST gives them
// back as a BLOB, NULs and bytes that are not UTF-8 included:
// TestClaimedBodiesAreAppendBody.)
var claimCols = fmt.Sprintf(`SELECT d.id, d.next_attempt_at, d.attempts, d.budget_base, d.last_error, e.id, e.type, e.created_at,
		CAST(zeroblob(%d) || iif(length(e.data) > 0, e.data, '{}') || '}' AS BLOB)`, bodyRoom)

// claimRow is one row of a claim statement.
type claimRow struct {
	id, at, attempts, base, created int64
	lastError, eventID, eventType   string
	framed                          []byte // see claimCols
}

// claimReader runs the claim's statements (due, dueFrom, fetch) on one
// read connection the relay holds while it runs, through the driver
// rather than database/sql's Scan, which converted the nine columns of
// every claimed row by reflection. It is the loop goroutine's alone.
//
// The statements run under a context that cannot be cancelled: they stop
// after LIMIT rows (a claim takes a few milliseconds), and the driver
// then steps each row without setting up cancellation for every query
// and taking the connection's lock for every row. The loop checks its own
// context between claims.
type claimReader struct {
	conn                *sql.Conn
	due, dueFrom, fetch driver.Stmt
	vals                [9]driver.Value
}

func newClaimReader(ctx context.Context, db *store.DB, due, dueFrom, fetch string) (*claimReader, error) {
	conn, err := db.Read.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim connection: %w", err)
	}
	c := &claimReader{conn: conn}
	err = conn.Raw(func(dc any) error {
		p, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare with a context", dc)
		}
		for _, s := range []struct {
			dst *driver.Stmt
			q   string
		}{{&c.due, due}, {&c.dueFrom, dueFrom}, {&c.fetch, fetch}} {
			st, err := p.PrepareContext(ctx, s.q)
			if err != nil {
				return err
			}
			if _, ok := st.(driver.StmtQueryContext); !ok {
				st.Close()
				return fmt.Errorf("driver statement %T cannot query with a context", st)
			}
			*s.dst = st
		}
		return nil
	})
	if err != nil {
		c.close()
		return nil, fmt.Errorf("prepare claim statements: %w", err)
	}
	return c, nil
}

// close closes the statements and gives the connection back to the pool.
func (c *claimReader) close() {
	_ = c.conn.Raw(func(any) error {
		for _, st := range []driver.Stmt{c.due, c.dueFrom, c.fetch} {
			if st != nil {
				st.Close()
			}
		}
		return nil
	})
	c.conn.Close()
}

// query runs st with args and calls each for every row until each returns
// false or the rows run out. The row, its strings and its framed slice
// are each's to keep: the driver copies every value out of SQLite
// (TestClaimedBodiesAreAppendBody).
func (c *claimReader) query(st driver.Stmt, args []driver.NamedValue, each func(*claimRow) bool) error {
	return c.conn.Raw(func(any) error {
		rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), args)
		if err != nil {
			return err
		}
		var r claimRow
		for {
			err := rows.Next(c.vals[:])
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				err = r.decode(&c.vals)
			}
			if err != nil {
				return errors.Join(err, rows.Close())
			}
			if !each(&r) {
				break
			}
		}
		return rows.Close()
	})
}

// decode reads v, the driver's values of one row, into r.
func (r *claimRow) decode(v *[9]driver.Value) error {
	var ok [9]bool
	r.id, ok[0] = v[0].(int64)
	r.at, ok[1] = v[1].(int64)
	r.attempts, ok[2] = v[2].(int64)
	r.base, ok[3] = v[3].(int64)
	r.lastError, ok[4] = v[4].(string)
	r.eventID, ok[5] = v[5].(string)
	r.eventType, ok[6] = v[6].(string)
	r.created, ok[7] = v[7].(int64)
	r.framed, ok[8] = v[8].([]byte)
	for i, good := range ok {
		if !good {
			return fmt.Errorf("claim column %d: unexpected %T", i, v[i])
		}
	}
	if len(r.framed) < bodyRoom+1 {
		return fmt.Errorf("claim column 8: %d bytes, want at least %d", len(r.framed), bodyRoom+1)
	}
	return nil
}

// namedArgs returns args as the driver takes them.
func namedArgs(args ...any) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// placeBody returns j's body built around framed (see claimCols): the
// envelope's head written into the room in front of the data when it
// fits, else a new slice.
func (r *Relay) placeBody(j *job, framed []byte) []byte {
	e := r.envelope(j)
	var room [bodyRoom]byte
	head := webhook.AppendBodyHead(room[:0], &e)
	if len(head) <= bodyRoom {
		start := bodyRoom - len(head)
		copy(framed[start:], head)
		return framed[start:len(framed):len(framed)]
	}
	return append(append(make([]byte, 0, len(head)+len(framed)-bodyRoom), head...), framed[bodyRoom:]...)
}
