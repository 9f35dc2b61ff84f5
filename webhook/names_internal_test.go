package webhook

import (
	"strings"
	"testing"
)

// The broker name checks replaced regexps with counted repetitions; these
// are the regexps' edges.
func TestBrokerNames(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   func(string) bool
		s    string
		want bool
	}{
		{"exchange empty (the default exchange)", amqpExchange, "", true},
		{"exchange 127", amqpExchange, strings.Repeat("e", 127), true},
		{"exchange 128", amqpExchange, strings.Repeat("e", 128), false},
		{"exchange punctuation", amqpExchange, "amq.topic:x-y_z", true},
		{"exchange space", amqpExchange, "a b", false},
		{"exchange non-ASCII", amqpExchange, "kasa-č", false},
		{"topic empty", kafkaTopic, "", false},
		{"topic 249", kafkaTopic, strings.Repeat("t", 249), true},
		{"topic 250", kafkaTopic, strings.Repeat("t", 250), false},
		{"topic colon", kafkaTopic, "a:b", false},
		{"topic dots and dashes", kafkaTopic, "pos.gate_events-1", true},
		{"stream 64", func(s string) bool { return nameOK(s, 1, 64, "_-") }, strings.Repeat("s", 64), true},
		{"stream 65", func(s string) bool { return nameOK(s, 1, 64, "_-") }, strings.Repeat("s", 65), false},
		{"stream dot", func(s string) bool { return nameOK(s, 1, 64, "_-") }, "a.b", false},
	} {
		if got := c.ok(c.s); got != c.want {
			t.Errorf("%s: %q → %v, want %v", c.name, c.s, got, c.want)
		}
	}
}
