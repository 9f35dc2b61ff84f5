package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/zvt"
	"github.com/posgate/posgate/simulator"
	"github.com/posgate/posgate/simulator/terminal"
	"github.com/rs/zerolog"
)

// TestTerminalHealth: /healthz's device entry for a ZVT terminal carries
// what the idle Status Enquiry and the Diagnosis the terminal asked for
// found.
func TestTerminalHealth(t *testing.T) {
	log := zerolog.New(zerolog.NewTestWriter(t))
	sim := terminal.New(terminal.Options{Step: 5 * time.Millisecond, DiagnosisRequired: true, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := simulator.ServeTCP(ctx, "127.0.0.1:0", sim.ServeTCP, log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := zvt.New(zvt.Options{ID: "t1", Spec: "tcp://" + srv.Addr(), StatusEvery: 50 * time.Millisecond, Log: log})
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		err := c.Register(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, device.ErrOffline) || time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		devs := deviceStates([]*device.Link{c.Link()})
		terminalHealth(devs, map[string]*zvt.Client{"t1": c})
		m := devs["t1"].(map[string]any)
		if m["diagnosis"] == "ok" && m["terminal_status"] == "ready" && m["state"] == "online" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health entry %v", m)
		}
	}
}
