//go:build linux || darwin

package me_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/posgate/posgate/fiscal"
	"github.com/posgate/posgate/fiscal/me"
	"github.com/posgate/posgate/masterkey"
	"github.com/posgate/posgate/store"
)

// TestKillHelper is the worker process TestKill9BetweenAnswerAndCommit
// kills: it runs only when that test starts it.
func TestKillHelper(t *testing.T) {
	if os.Getenv("POSGATE_KILL_HELPER") != "1" {
		t.Skip("started by TestKill9BetweenAnswerAndCommit only")
	}
	ctx := context.Background()
	now, err := time.Parse(time.RFC3339, os.Getenv("POSGATE_KILL_NOW"))
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	db, err := store.Open(ctx, os.Getenv("POSGATE_KILL_DB"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := masterkey.LoadOrCreate(os.Getenv("POSGATE_KILL_MASTER"))
	if err != nil {
		t.Fatal(err)
	}
	client, err := me.NewClient(me.ClientOptions{URL: os.Getenv("POSGATE_KILL_URL"), CAFile: os.Getenv("POSGATE_KILL_CA"), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	profile, err := me.New(me.Options{Issuer: issuer, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	reg := fiscal.NewRegistrations(db, fiscal.RegistrationsOptions{Registrar: profile, Now: clock,
		Certificates: fiscal.NewCertificates(db, fiscal.CertificatesOptions{Master: mk, Now: clock}),
		// The answer is in; kill -9 before it is committed.
		AfterSend: func(string) error { return syscall.Kill(os.Getpid(), syscall.SIGKILL) }})
	reg.RunOnce(ctx)
	time.Sleep(5 * time.Second) // the kill is delivered before this ends
	t.Fatal("not killed")
}

// TestKill9BetweenAnswerAndCommit: a worker process is killed with
// SIGKILL after the service answered and before posgate committed the
// answer. The restarted worker (this process) finds the job pending and
// registers the invoice again, with the same IIC and issue time, marked
// as a subsequent delivery; the invoice never gets a second IIC.
func TestKill9BetweenAnswerAndCommit(t *testing.T) {
	r := newRig(t, rigOptions{})
	inv := r.sale(1100)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "POSGATE_KILL_HELPER=1", "POSGATE_KILL_DB="+r.db.Path(), "POSGATE_KILL_MASTER="+r.mkPath,
		"POSGATE_KILL_URL="+r.sim.URL(), "POSGATE_KILL_CA="+r.caFile, "POSGATE_KILL_NOW="+r.clk.Now().Format(time.RFC3339))
	out, err := cmd.CombinedOutput()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper was not killed: %v\n%s", err, out)
	}
	reqs := r.sim.Requests()
	if len(reqs) != 1 || reqs[0].Answer == "" {
		t.Fatalf("before the restart: %+v", reqs)
	}
	if st := r.status(inv.ID); st.Status != fiscal.RegPending || st.FIC != "" || st.Attempts != 1 {
		t.Fatalf("after the kill: %+v", st)
	}
	r.drain(5)
	reqs = r.sim.Requests()
	if len(reqs) != 2 || reqs[1].IIC != inv.Signature.Code || reqs[1].SubseqDelivType == "" {
		t.Fatalf("after the restart: %+v", reqs)
	}
	got, err := r.inv.Get(context.Background(), inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Signature.Code != inv.Signature.Code || !got.IssuedAt.Equal(inv.IssuedAt) ||
		got.Fiscalization.Status != fiscal.RegCompleted || got.Fiscalization.FIC != reqs[0].Answer {
		t.Fatalf("invoice after restart: %+v %+v; first answer %s", got.Signature, got.Fiscalization, reqs[0].Answer)
	}
	var sends int
	r.db.Read.QueryRow("SELECT COUNT(*) FROM fiscal_exchanges WHERE registration_id = ?", inv.ID).Scan(&sends)
	if sends != 2 {
		t.Fatalf("%d exchanges kept, want 2 (the killed one's request is on record)", sends)
	}
}
