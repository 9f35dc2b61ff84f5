package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// adyenNodeModules finds the node_modules holding @adyen/api-library:
// $POSGATE_ADYEN_NODE_MODULES, or .ci/node/node_modules, where .ci/run
// installs it. Under CI=true, or when .ci/run set the variable, a missing
// node or library fails the test instead of skipping it.
func adyenNodeModules(t *testing.T) (node, modules string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" || os.Getenv("POSGATE_ADYEN_NODE_MODULES") != "" {
			t.Fatalf("%s is missing; .ci/run installs it", what)
		}
		t.Skipf("%s is missing (run .ci/run, or npm install --prefix .ci/node @adyen/api-library@32.1.0)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node")
	}
	modules = os.Getenv("POSGATE_ADYEN_NODE_MODULES")
	if modules == "" {
		modules, _ = filepath.Abs("../../.ci/node/node_modules")
	}
	if _, err := os.Stat(filepath.Join(modules, "@adyen", "api-library", "package.json")); err != nil {
		missing("@adyen/api-library in " + modules)
	}
	return node, modules
}

// TestAdyenNodeLibraryDrivesSimulator: Adyen's own client library (not
// posgate's codec) talks to posgate sim terminal --protocol nexo: it
// pins the generated root and checks the CN as for a real terminal,
// encrypts with its own NexoCrypto, and runs a sale, a status request,
// an abort and a wrong-key error.
func TestAdyenNodeLibraryDrivesSimulator(t *testing.T) {
	node, modules := adyenNodeModules(t)
	root := filepath.Join(t.TempDir(), "root.pem")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	stdout := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- runSimTerminal(ctx, []string{"--protocol", "nexo", "--tcp", "127.0.0.1:0", "--step", "50ms",
			"--passphrase", "Interop-Pass123", "--key-id", "InteropKey", "--root-out", root}, stdout, &stderr)
	}()
	defer func() { cancel(); <-done }()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("simulator did not start: %s %s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
		line, _, _ := strings.Cut(stdout.String(), "\n")
		if _, a, ok := strings.Cut(line, " on tls://"); ok {
			addr = a
		}
	}
	cmd := exec.CommandContext(ctx, node, "testdata/adyen-node-interop.js")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "NODE_PATH=" + modules, "SIM_ADDR=" + addr, "SIM_ROOT=" + root,
		"POI_ID=V400m-324688179", "KEY_ID=InteropKey", "PASSPHRASE=Interop-Pass123"}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node: %v\n%s\n%s", err, out, ee.Stderr)
		}
		t.Fatalf("node: %v", err)
	}
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("node printed %q", sc.Text())
		}
		steps[m["step"].(string)] = m
	}
	s := steps["sale"]
	if s["result"] != "Success" || s["authorized"] != 10.99 || s["poiTx"] == "" {
		t.Fatalf("sale %v", s)
	}
	st := steps["status"]
	if st["result"] != "Success" || st["inner"] != "Success" || st["poiTx"] != s["poiTx"] {
		t.Fatalf("status %v (sale %v)", st, s)
	}
	a := steps["abort"]
	if a["abortAnswer"] != "{}" || a["result"] != "Failure" || a["condition"] != "Aborted" {
		t.Fatalf("abort %v", a)
	}
	w := steps["wrongkey"]
	if w["error"] == "" || !strings.Contains(fmt.Sprint(w["answer"]), "Nexo Service: crypto error (3)") {
		t.Fatalf("wrong key %v", w)
	}
}

// lockedBuffer is a bytes.Buffer safe to write and read concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
