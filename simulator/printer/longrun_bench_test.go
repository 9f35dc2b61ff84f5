package printer_test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/simulator/printer"
)

// BenchmarkLongRun prints b.N fiscal receipts (three sales each) and
// reports the heap afterwards, with the default bounded journal and, as
// the baseline of the same run, a journal that keeps everything (what
// the simulator did before).
func BenchmarkLongRun(b *testing.B) {
	for _, tc := range []struct {
		name    string
		journal int
	}{{"journal=default", 0}, {"journal=unbounded", 1 << 30}} {
		b.Run(tc.name, func(b *testing.B) {
			sim := printer.New(printer.Options{Journal: tc.journal})
			host, dev := net.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = sim.Serve(ctx, dev) }()
			defer func() { cancel(); host.Close(); <-done }()
			seq := byte(0x20)
			buf := make([]byte, 0, 512)
			one := make([]byte, 1)
			do := func(cmd uint16, fields ...string) {
				seq = 0x20 + (seq-0x20+1)%0x5F
				frame, err := datecs.Encode(datecs.Msg{Seq: seq, Cmd: cmd, Data: datecs.Params(fields...)})
				if err != nil {
					b.Fatal(err)
				}
				host.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := host.Write(frame); err != nil {
					b.Fatal(err)
				}
				buf = buf[:0]
				for {
					if _, err := host.Read(one); err != nil {
						b.Fatal(err)
					}
					if one[0] == 0x16 && len(buf) == 0 {
						continue // SYN
					}
					buf = append(buf, one[0])
					if one[0] == 0x03 {
						break
					}
				}
				m, _, err := datecs.Decode(buf)
				if err != nil || m.Cmd != cmd || bytes.HasPrefix(m.Data, []byte("-")) {
					b.Fatalf("answer to %02X: %+v %v", cmd, m, err)
				}
			}
			b.ResetTimer()
			for range b.N {
				do(datecs.CmdOpen, "1", "0000", "1", "")
				do(datecs.CmdSale, "Espresso doppio", "2", "2.40", "1", "", "", "0")
				do(datecs.CmdSale, "Croissant au beurre", "2", "1.90", "2", "", "", "0")
				do(datecs.CmdSale, "Mineral water 0.5 l", "4", "1.20", "1", "", "", "0")
				do(datecs.CmdPayment, "", "", "")
				do(datecs.CmdClose)
			}
			b.StopTimer()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(len(sim.Journal())), "journal-docs")
		})
	}
}
