package device_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/rs/zerolog"
)

// BenchmarkFirstByte measures what DESIGN §8 budgets as "API-to-first-byte
// on the terminal line": from Link.Do to the first byte read by the device
// on the other end of a loopback TCP line. It reports the p99 as well.
func BenchmarkFirstByte(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	got := make(chan time.Time, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			got <- time.Now()
		}
	})
	l := device.NewLink(device.LinkOptions{ID: "b", Spec: "tcp://" + ln.Addr().String(), Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	wg.Go(func() { l.Run(ctx) })
	defer func() { cancel(); ln.Close(); wg.Wait() }()
	for online, _ := l.State(); !online; online, _ = l.State() {
		time.Sleep(time.Millisecond)
	}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		err := l.Do(ctx, func(ctx context.Context, p device.Port) error {
			_, err := p.Write([]byte{0x10})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
