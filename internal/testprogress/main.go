package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	every := flag.Duration("every", 30*time.Second, "how often to print the packages still running")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: testprogress [-every 30s] go test -json [flags] [packages]")
		os.Exit(2)
	}
	os.Exit(run(flag.Args(), *every, os.Stdout, os.Stderr))
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time       time.Time
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Output     string
}

// run runs the command, formats its JSON stream to stdout and returns its
// exit status.
func run(args []string, every time.Duration, stdout, stderr io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testprogress:", err)
		return 2
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testprogress:", err)
		return 2
	}
	f := newFormatter(stdout)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				f.progress(now)
			}
		}
	})
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f.line(sc.Bytes())
	}
	close(stop)
	wg.Wait()
	err = cmd.Wait()
	f.done()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		fmt.Fprintln(stderr, "testprogress:", err)
		return 2
	}
}

// formatter turns events into go test's plain output.
type formatter struct {
	mu       sync.Mutex
	w        io.Writer
	started  map[string]time.Time        // running packages
	tests    map[string]*strings.Builder // package + "\x00" + test -> its output so far
	finished int
}

func newFormatter(w io.Writer) *formatter {
	return &formatter{w: w, started: map[string]time.Time{}, tests: map[string]*strings.Builder{}}
}

func (f *formatter) line(b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var e event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil {
		fmt.Fprintf(f.w, "%s\n", b) // not an event: pass it on
		return
	}
	switch e.Action {
	case "build-output":
		io.WriteString(f.w, e.Output)
	case "start":
		f.started[e.Package] = time.Now()
	case "output":
		if e.Test == "" {
			// The package's own lines: ok/FAIL, panics, coverage, and
			// the PASS/FAIL marker that -v adds (dropped, as without -v).
			if e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				io.WriteString(f.w, e.Output)
			}
			return
		}
		k := e.Package + "\x00" + e.Test
		sb := f.tests[k]
		if sb == nil {
			sb = &strings.Builder{}
			f.tests[k] = sb
		}
		if strings.HasPrefix(e.Output, "SUMMARY ") {
			io.WriteString(f.w, e.Output) // a test's headline, printed as it comes
			return
		}
		if !isFraming(e.Output) {
			sb.WriteString(e.Output)
		}
	case "pass", "skip":
		if e.Test == "" {
			f.end(e.Package, false)
			return
		}
		delete(f.tests, e.Package+"\x00"+e.Test)
	case "fail":
		if e.Test == "" {
			f.end(e.Package, true)
			return
		}
		k := e.Package + "\x00" + e.Test
		if sb := f.tests[k]; sb != nil {
			io.WriteString(f.w, sb.String())
			delete(f.tests, k)
		}
	}
}

// isFraming reports the lines -v adds that plain go test does not print.
func isFraming(s string) bool {
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.HasPrefix(strings.TrimSpace(s), "--- PASS") || strings.HasPrefix(strings.TrimSpace(s), "--- SKIP")
}

// end forgets a finished package; a failed one first prints what its
// unfinished tests wrote (a panic or a timeout stops them mid-way).
func (f *formatter) end(pkg string, failed bool) {
	delete(f.started, pkg)
	f.finished++
	var left []string
	for k := range f.tests {
		if strings.HasPrefix(k, pkg+"\x00") {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	for _, k := range left {
		if failed {
			io.WriteString(f.w, f.tests[k].String())
		}
		delete(f.tests, k)
	}
}

// progress prints the packages still running, longest first.
func (f *formatter) progress(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) == 0 {
		return
	}
	pkgs := make([]string, 0, len(f.started))
	for p := range f.started {
		pkgs = append(pkgs, p)
	}
	sort.Slice(pkgs, func(i, j int) bool { return f.started[pkgs[i]].Before(f.started[pkgs[j]]) })
	parts := make([]string, len(pkgs))
	for i, p := range pkgs {
		parts[i] = fmt.Sprintf("%s (%s)", p, now.Sub(f.started[p]).Round(time.Second))
	}
	fmt.Fprintf(f.w, "... %d packages done; running: %s\n", f.finished, strings.Join(parts, ", "))
}

// done prints what a killed run left: tests that never ended.
func (f *formatter) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p := range f.started {
		fmt.Fprintf(f.w, "... %s never finished\n", p)
	}
}
