package rabbittest_test

import (
	"context"
	"testing"

	"github.com/posgate/posgate/internal/rabbittest"
)

// The harness itself: a broker starts, takes a login, dies on Kill and
// comes back on Restart.
func TestStartKillRestart(t *testing.T) {
	s := rabbittest.Start(t, rabbittest.Options{})
	s.Kill()
	if _, err := s.Dial(context.Background()); err == nil {
		t.Fatal("a killed broker still takes logins")
	}
	s.Restart()
	c, err := s.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
