package observe_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/posgate/posgate/observe"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestProgress(t *testing.T) {
	var buf syncBuf
	stop := observe.Progress(context.Background(), zerolog.New(&buf), "z report", 20*time.Millisecond)
	time.Sleep(70 * time.Millisecond)
	stop()
	n := strings.Count(buf.String(), `"message":"still working"`)
	if n < 2 || !strings.Contains(buf.String(), `"task":"z report"`) {
		t.Fatalf("%d progress lines:\n%s", n, buf.String())
	}
	after := buf.String()
	time.Sleep(50 * time.Millisecond)
	if buf.String() != after {
		t.Fatal("progress lines after stop")
	}
	var quiet syncBuf
	observe.Progress(context.Background(), zerolog.New(&quiet), "quick", time.Hour)()
	if quiet.String() != "" {
		t.Fatalf("a quick task logged: %s", quiet.String())
	}
}

func TestBacklogWatch(t *testing.T) {
	var buf syncBuf
	var mu sync.Mutex
	backlog := []int64{5000, 4000, 3000, 10, 10}
	pending := func(context.Context) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		n := backlog[0]
		if len(backlog) > 1 {
			backlog = backlog[1:]
		}
		return n, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 130*time.Millisecond)
	defer cancel()
	observe.BacklogWatch(ctx, zerolog.New(&buf), pending, 1000, 20*time.Millisecond)
	out := buf.String()
	if strings.Count(out, "webhook backlog draining") != 3 || strings.Count(out, "webhook backlog drained") != 1 ||
		!strings.Contains(out, `"per_second":50000`) || !strings.Contains(out, `"eta":`) {
		t.Fatalf("log:\n%s", out)
	}
}
