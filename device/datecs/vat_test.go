package datecs_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// vatAnswer is an answer to 32h as the X manual's command 50 (32h)
// "Return the active VAT rates" lays it out: ErrorCode⇥nZreport⇥TaxA⇥…
// ⇥TaxH⇥EntDate⇥, with 100.00 for a disabled group.
var vatAnswer = []string{"0", "1", "0.00", "21.00", "7.00", "20.00", "100.00", "100.00", "100.00", "100.00", "01-01-24"}

// TestVATRatesVectors: the request and answer frames of command 50 (32h),
// X manual v2.02 p.11, built by hand (testdata/datecs/x-vatrates-*.bin:
// LEN and BCC computed per the manual's low-level protocol section by a
// separate script, not by this package's codec).
func TestVATRatesVectors(t *testing.T) {
	for _, v := range []struct {
		file string
		msg  datecs.Msg
	}{
		{"x-vatrates-req", datecs.Msg{Seq: 0x20, Cmd: datecs.CmdVATRates, Data: []byte{}}},
		{"x-vatrates-ans", datecs.Msg{Seq: 0x20, Cmd: datecs.CmdVATRates, Data: datecs.Params(vatAnswer...), Status: okStatus}},
	} {
		t.Run(v.file, func(t *testing.T) {
			want := readVector(t, v.file)
			got, err := datecs.X.Encode(v.msg)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Encode=% X, %v\nwant    % X", got, err, want)
			}
		})
	}
}

// TestVATRatesRead: New reads the rates on connect from a peer that
// answers with the manual's frame, and maps rates to groups by rate.
func TestVATRatesRead(t *testing.T) {
	ctx := testCtx(t)
	ans, _, err := datecs.Decode(readVector(t, "x-vatrates-ans"))
	if err != nil {
		t.Fatal(err)
	}
	var asked int
	f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
		switch req.Cmd {
		case 0x32:
			asked++
			if len(req.Data) != 0 {
				t.Errorf("32h with data % X; the manual gives it no parameters", req.Data)
			}
			a := ans
			a.Seq = req.Seq
			b, err := datecs.Encode(a)
			if err != nil {
				t.Fatal(err)
			}
			return b
		case 0x5A:
			return answer(t, datecs.X, req, "0", "FP-700X", "1.00", "01Jan20", "1200", "ABCD", "0", "DT000600", "02517985")
		}
		return answer(t, datecs.X, req, "0")
	})
	var hooked datecs.VATRates
	p, err := datecs.New(ctx, f, datecs.Options{Timeout: 50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t)),
		OnConnect: func(_ context.Context, _ device.PrinterInfo, r datecs.VATRates) { hooked = r }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := datecs.VATRates{0, 2100, 700, 2000, datecs.RateDisabled, datecs.RateDisabled, datecs.RateDisabled, datecs.RateDisabled}
	if p.Rates() != want || hooked != want || asked != 1 {
		t.Fatalf("Rates=%v hooked=%v asked=%d, want %v once", p.Rates(), hooked, asked, want)
	}
	for _, tc := range []struct {
		rate  int64
		group int
		ok    bool
	}{{2100, 2, true}, {0, 1, true}, {2000, 4, true}, {700, 3, true}, {1900, 0, false}, {datecs.RateDisabled, 0, false}} {
		if g, ok := want.Group(tc.rate); g != tc.group || ok != tc.ok {
			t.Errorf("Group(%d)=%d,%v, want %d,%v", tc.rate, g, ok, tc.group, tc.ok)
		}
	}
}

// TestVATRatesOnSimulator: against a simulator programmed A 0 %, B 21 %,
// C 7 %, D 20 %, a 21 % item prints in B with its 21 % VAT line, and an
// item whose group has another rate is refused before anything prints.
func TestVATRatesOnSimulator(t *testing.T) {
	rates := [8]int64{0, 2100, 700, 2000, datecs.RateDisabled, datecs.RateDisabled, datecs.RateDisabled, datecs.RateDisabled}
	eachTransport(t, printer.Options{VATRates: &rates}, func(t *testing.T, r *rig) {
		ctx := testCtx(t)
		p := r.connect(t)
		if p.Rates() != datecs.VATRates(rates) {
			t.Fatalf("Rates=%v, want %v", p.Rates(), rates)
		}
		rate := int64(2100)
		g, ok := p.Rates().Group(rate)
		if !ok || g != 2 {
			t.Fatalf("Group(21 %%)=%d,%v", g, ok)
		}
		doc := device.Receipt{ID: "vat-1", Lines: []device.Line{{Item: device.Item{Name: "Wine", VATGroup: g, VATRate: &rate, UnitPrice: 1210}}}}
		if _, err := p.PrintReceipt(ctx, doc); err != nil {
			t.Fatal(err)
		}
		rec := r.sim.Receipts()[0]
		if rec.Items[0].Group != 2 || !strings.Contains(rec.Text, "VAT B 21.00%") || !strings.Contains(rec.Text, "2.10") {
			t.Fatalf("printed:\n%s", rec.Text)
		}

		before := r.sim.Executed()
		wrong := device.Receipt{ID: "vat-2", Lines: []device.Line{{Item: device.Item{Name: "Wine", VATGroup: 1, VATRate: &rate, UnitPrice: 1210}}}}
		if _, err := p.PrintReceipt(ctx, wrong); !errors.Is(err, datecs.ErrVATRate) {
			t.Fatalf("21 %% item in group A (0 %%): err=%v, want ErrVATRate", err)
		}
		if n := r.sim.Executed(); n != before {
			t.Fatalf("%d frames sent for a refused receipt", n-before)
		}
		// The simulator, like a printer, takes no sale in a disabled group.
		if _, err := p.OpenReceipt(ctx, device.ReceiptHeader{}); err != nil {
			t.Fatal(err)
		}
		if err := p.AddItem(ctx, device.Item{Name: "X", VATGroup: 5, UnitPrice: 100}); !errors.Is(err, device.ErrPrinterRejected) {
			t.Fatalf("sale in a disabled group: %v", err)
		}
	})
}

// FuzzVATAnswer: any 32h answer either fails or gives rates within 0 to
// 100.00 % that read back the same when formatted.
func FuzzVATAnswer(f *testing.F) {
	f.Add(strings.Join(vatAnswer[1:], "\t") + "\t")
	f.Add("1\t0.00\t20.00\t20.00\t9.00\t0.00\t0.00\t0.00\t0.00\t01-01-24\t")
	f.Add("1\t100.00\t")
	f.Fuzz(func(t *testing.T, data string) {
		v, err := datecs.ParseVATAnswer(datecs.Fields([]byte(data)))
		if err != nil {
			return
		}
		fields := []string{"1"}
		for _, r := range v {
			if r < 0 || r > datecs.RateDisabled {
				t.Fatalf("rate %d out of range from %q", r, data)
			}
			fields = append(fields, datecs.FormatAmount(r))
		}
		again, err := datecs.ParseVATAnswer(append(fields, "01-01-24"))
		if err != nil || again != v {
			t.Fatalf("round trip %v → %v, %v", v, again, err)
		}
	})
}
