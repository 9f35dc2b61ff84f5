package outbox_test

import (
	"github.com/posgate/posgate/webhook"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	e := newEnv(t, "", fastOptions(), webhook.SenderOptions{})
	rcv := newReceiver(t, nil)
	e.endpoint(rcv.URL)
	e.run()
	for range 50 {
		e.enqueue("invoice.created", `{"n":1}`)
	}
	waitFor(t, 10*time.Second, "50 deliveries", func() bool { return len(rcv.deliveries()) >= 50 })
}
