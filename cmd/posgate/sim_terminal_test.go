package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/rs/zerolog"
)

func TestSimTerminalTCPRendersReceipt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer // from main_test.go
	done := make(chan error, 1)
	go func() {
		done <- runSimTerminal(ctx, []string{"--tcp", "127.0.0.1:0", "--step", "10ms"}, &stdout, &stderr)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runSimTerminal=%v", err)
		}
	}()
	addrRE := regexp.MustCompile(`on (tcp://\S+)`)
	var spec string
	for deadline := time.Now().Add(5 * time.Second); spec == ""; {
		if m := addrRE.FindStringSubmatch(stdout.String()); m != nil {
			spec = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout=%q stderr=%q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	c := zvt.New(zvt.Options{ID: "t1", Spec: spec, Log: zerolog.New(zerolog.NewTestWriter(t))})
	cctx, ccancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(cctx) })
	defer func() { ccancel(); wg.Wait() }()
	reqCtx, reqCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer reqCancel()
	for {
		err := c.Register(reqCtx)
		if err == nil {
			break
		}
		if reqCtx.Err() != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // the link is still connecting
	}
	res, err := c.Authorize(reqCtx, device.Charge{Amount: 4321}, nil)
	if err != nil || res.Outcome != device.Approved {
		t.Fatalf("sale: %+v, %v", res, err)
	}
	out := stdout.String()
	if !strings.Contains(out, "43.21 EUR") || !strings.Contains(out, "APPROVED") {
		t.Fatalf("receipt not rendered:\n%s", out)
	}
}

func TestPortsLists(t *testing.T) {
	var out syncBuffer
	if err := runPorts(context.Background(), nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() == "" {
		t.Fatal("no output")
	}
}
