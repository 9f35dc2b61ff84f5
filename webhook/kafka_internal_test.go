package webhook

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The answers a real Kafka broker gives that kfake does not produce
// (it closes the connection on a failed login instead of answering
// SASL_AUTHENTICATION_FAILED, error code 58): mapped as webhook answers.
func TestClassifyKafka(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		err, dial error
		class     string
		status    int
		network   bool
	}{
		{fmt.Errorf("produce: %w", kerr.SaslAuthenticationFailed), nil, ClassHTTP, 401, false},
		{kerr.TopicAuthorizationFailed, nil, ClassHTTP, 403, false},
		{kerr.UnknownTopicOrPartition, nil, ClassHTTP, 0, false},
		{kgo.ErrRecordTimeout, nil, ClassTimeout, 0, false},
		{kgo.ErrRecordTimeout, &DialError{Err: errors.New("connection refused")}, ClassConnect, 0, true},
		{kgo.ErrRecordTimeout, &DialError{Err: errors.New("no such host"), DNS: true}, ClassDNS, 0, true},
		{kgo.ErrRecordTimeout, errors.New("tls: failed to verify certificate"), ClassTLS, 0, false},
	} {
		r := classifyKafka(ctx, c.err, c.dial)
		if r.Class != c.class || r.Status != c.status || r.Network != c.network {
			t.Errorf("%v (dial %v): %+v", c.err, c.dial, r)
		}
	}
}
