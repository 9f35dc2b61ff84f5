package datecs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/rs/zerolog"
)

// TestStatusErrors checks how an answer's error field and status bits turn
// into typed errors, for a command that prints (31h) and a query (4Ch).
func TestStatusErrors(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name  string
		code  string
		bits  []datecs.Bit
		query bool
		want  []error // nil: success
		not   []error
	}{
		{name: "OK", code: "0"},
		{name: "InfoBitsOnly", code: "0", bits: []datecs.Bit{datecs.BitPaperLow, datecs.BitFMLow, datecs.BitJournalLow}},
		{name: "ErrPaperOut", code: "0", bits: []datecs.Bit{datecs.BitPaperOut, datecs.BitGeneralError},
			want: []error{device.ErrPaperOut, device.ErrPrinterRejected}},
		{name: "QueryWithPaperOut", code: "0", bits: []datecs.Bit{datecs.BitPaperOut}, query: true},
		{name: "ErrCoverOpen", code: "-1", bits: []datecs.Bit{datecs.BitCoverOpen},
			want: []error{device.ErrCoverOpen}, not: []error{device.ErrPaperOut}},
		{name: "ErrFiscalMemoryFull", code: "-1", bits: []datecs.Bit{datecs.BitFMFull, datecs.BitFMGeneral},
			want: []error{device.ErrFiscalMemoryFull}},
		{name: "ErrFiscalMemory", code: "-1", bits: []datecs.Bit{datecs.BitFMMissing},
			want: []error{device.ErrFiscalMemory}},
		{name: "ErrJournalFull", code: "-1", bits: []datecs.Bit{datecs.BitJournalFull},
			want: []error{device.ErrJournalFull}},
		{name: "ErrNoReceipt", code: "0", bits: []datecs.Bit{datecs.BitNotPermitted},
			want: []error{device.ErrCommandNotPermitted, device.ErrNoReceipt}, not: []error{device.ErrReceiptOpen}},
		{name: "ErrCommandSyntax", code: "0", bits: []datecs.Bit{datecs.BitSyntax}, query: true,
			want: []error{device.ErrCommandSyntax}},
		{name: "ErrUnknownCommand", code: "0", bits: []datecs.Bit{datecs.BitInvalidCmd},
			want: []error{device.ErrUnknownCommand}},
		{name: "ErrPrinterOverflow", code: "0", bits: []datecs.Bit{datecs.BitOverflow},
			want: []error{device.ErrPrinterOverflow}},
		{name: "CodeOnly", code: "-111016", query: true, want: []error{device.ErrPrinterRejected},
			not: []error{device.ErrPaperOut, device.ErrCoverOpen}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakePort(datecs.X, func(req datecs.Msg, n int) []byte {
				st := append([]byte{}, okStatus...)
				fields := []string{"0"}
				switch req.Cmd {
				case 0x31, 0x4C:
					for _, b := range tc.bits {
						datecs.Set(st, b)
					}
					fields = []string{tc.code, "0", "1", "0", "0.00", "0.00"}
				case 0x5A:
					fields = []string{"0", "FP-700X", "1", "2", "3", "4", "5", "DT000600", "02517985"}
				case 0x32:
					fields = vatAnswer
				}
				b, err := datecs.Encode(datecs.Msg{Seq: req.Seq, Cmd: req.Cmd, Data: datecs.Params(fields...), Status: st})
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
			p, err := datecs.New(ctx, f, datecs.Options{Timeout: 50 * time.Millisecond, Log: zerolog.New(zerolog.NewTestWriter(t))})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if tc.query {
				_, err = p.Transaction(ctx)
			} else {
				err = p.AddItem(ctx, device.Item{Name: "Tea", VATGroup: 2, UnitPrice: 100})
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("err=%v, want success", err)
				}
				return
			}
			var pe *device.PrinterError
			if !errors.As(err, &pe) || !errors.Is(err, device.ErrPrinterRejected) {
				t.Fatalf("err=%v, want a *device.PrinterError", err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err=%v does not match %v", err, w)
				}
			}
			for _, w := range tc.not {
				if errors.Is(err, w) {
					t.Errorf("err=%v matches %v", err, w)
				}
			}
		})
	}
}
