package fiscal_test

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
)

// TestNumberingGaplessUnderRefusals signs before the transaction (the
// number is guessed) while invoices are refused inside it after their
// number was taken (the registration check refuses every fifth; the
// idempotency hook fails every seventh) and some callers give up while
// queued. The committed numbers must still be 1…n with no gap and no
// repeat, and every signature must be over the invoice's own number and
// verify with the certificate.
func TestNumberingGaplessUnderRefusals(t *testing.T) {
	e := newEnv(t, "")
	refuseReg := errors.New("refused")
	e.inv = fiscal.NewInvoices(e.db, fiscal.InvoicesOptions{
		Scheme: e.sch, Certificates: e.certs, EmitTx: fiscal.EmitToOutbox,
		TIN: "12345678", BusinessUnit: "bb123bb123", Device: "cc123cc123", Software: "ss123ss123",
		VATGroups: map[int64]int{2100: 1, 950: 2, 0: 3},
		Location:  mustZone(t, "Europe/Podgorica"), Now: e.clk.Now,
		RegisterTx: func(ctx context.Context, tx *sql.Tx, inv fiscal.Invoice) error {
			if inv.Totals.Total%5 == 0 {
				return refuseReg
			}
			return nil
		},
	})
	const n = 120
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		made []fiscal.Invoice
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			total := int64(101 + i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if i%11 == 0 {
				// Gone at once: it may leave while queued, or never start.
				ctx, cancel = context.WithTimeout(ctx, time.Duration(i%3)*time.Millisecond)
				defer cancel()
			}
			c := e.caller(fmt.Sprint("g", i))
			c.CompleteTx = func(ctx context.Context, tx *sql.Tx, inv fiscal.Invoice) error {
				if total%7 == 0 {
					return errors.New("hook failed")
				}
				return nil
			}
			inv, err := e.inv.Create(ctx, sale(total), c)
			switch {
			case err == nil:
				if total%5 == 0 || total%7 == 0 {
					t.Errorf("invoice of %d created, want refused", total)
				}
				mu.Lock()
				made = append(made, inv)
				mu.Unlock()
			case i%11 == 0, total%5 == 0, total%7 == 0:
			default:
				t.Errorf("invoice of %d: %v", total, err)
			}
		}()
	}
	wg.Wait()

	rows, err := e.db.Read.Query("SELECT ordinal FROM invoices ORDER BY ordinal")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var count int64
	for rows.Next() {
		var got int64
		if err := rows.Scan(&got); err != nil {
			t.Fatal(err)
		}
		if count++; got != count {
			t.Fatalf("ordinal %d, want %d: a gap or a repeat", got, count)
		}
	}
	if int(count) != len(made) || count < n/2 {
		t.Fatalf("%d invoices stored, %d created", count, len(made))
	}
	var last int64
	if err := e.db.Read.QueryRow("SELECT last FROM invoice_counters").Scan(&last); err != nil || last != count {
		t.Fatalf("counter %d (%v), want %d", last, err, count)
	}
	blk, _ := pem.Decode([]byte(e.cert.CertificatePEM))
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, inv := range made {
		if !strings.Contains(inv.Signature.SignedString, fmt.Sprintf("|%d|", inv.Ordinal)) {
			t.Fatalf("invoice %d signed %q", inv.Ordinal, inv.Signature.SignedString)
		}
		if err := e.sch.Verify(cert.PublicKey, inv.Signature); err != nil {
			t.Fatalf("invoice %d: %v", inv.Ordinal, err)
		}
	}
}

// TestNumberingAfterCounterMoved: the counter advanced behind the
// numberer's back (another process restored, a test wrote it): the next
// invoice still takes the counter's next number, signed over it.
func TestNumberingAfterCounterMoved(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if _, err := e.inv.Create(ctx, sale(100), e.caller("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Write.Exec("UPDATE invoice_counters SET last = 41"); err != nil {
		t.Fatal(err)
	}
	inv, err := e.inv.Create(ctx, sale(100), e.caller("b"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Ordinal != 42 || !strings.Contains(inv.Signature.SignedString, "|42|") {
		t.Fatalf("ordinal %d signed %q, want 42", inv.Ordinal, inv.Signature.SignedString)
	}
}
