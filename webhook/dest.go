package webhook

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
)

// dest is a broker endpoint's destination: the one field of its type is
// set, none for a webhook.
type dest struct {
	NATS  *NATSConfig
	AMQP  *AMQPConfig
	Kafka *KafkaConfig
}

// destSecrets are the sealed part of a destination, whatever its type.
type destSecrets struct {
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// masked returns d as the API shows it: credentials masked.
func (d dest) masked() dest {
	out := dest{NATS: maskNATS(d.NATS)}
	if d.AMQP != nil {
		c := *d.AMQP
		c.Password = maskSecret(c.Password)
		out.AMQP = &c
	}
	if d.Kafka != nil {
		c := *d.Kafka
		c.Password = maskSecret(c.Password)
		out.Kafka = &c
	}
	return out
}

func maskSecret(v string) string {
	if v != "" {
		return "****"
	}
	return ""
}

// keepMasked replaces a credential next sends back masked ("****", as
// the API showed it) with the stored one, so an endpoint read with GET
// can be sent back without wiping its credentials.
func (d dest) keepMasked(stored dest) dest {
	d.NATS = keepMaskedNATS(d.NATS, stored.NATS)
	if d.AMQP != nil && stored.AMQP != nil && d.AMQP.Password == "****" {
		c := *d.AMQP
		c.Password = stored.AMQP.Password
		d.AMQP = &c
	}
	if d.Kafka != nil && stored.Kafka != nil && d.Kafka.Password == "****" {
		c := *d.Kafka
		c.Password = stored.Kafka.Password
		d.Kafka = &c
	}
	return d
}

// destColumns returns what the store keeps of d: the plain part as JSON
// and the credentials sealed under the master key.
func (s *Endpoints) destColumns(id string, d dest) (string, []byte) {
	var (
		plain any
		sec   destSecrets
	)
	switch {
	case d.NATS != nil:
		c := *d.NATS
		sec = destSecrets{Password: c.Password, Token: c.Token}
		c.Password, c.Token = "", ""
		plain = c
	case d.AMQP != nil:
		c := *d.AMQP
		sec.Password, c.Password = c.Password, ""
		plain = c
	case d.Kafka != nil:
		c := *d.Kafka
		sec.Password, c.Password = c.Password, ""
		plain = c
	default:
		return "{}", nil
	}
	b, _ := json.Marshal(plain)
	if sec == (destSecrets{}) {
		return string(b), nil // nothing to seal; the view shows no "****"
	}
	raw, _ := json.Marshal(sec)
	return string(b), s.master.Seal(raw, aad(id, "dest"))
}

// decodeDest rebuilds a broker endpoint's destination from its plain
// column, without credentials; none for a webhook.
func decodeDest(id, typ, config string) (dest, error) {
	var (
		d dest
		v any
	)
	switch typ {
	case TypeNATS:
		d.NATS = &NATSConfig{}
		v = d.NATS
	case TypeAMQP:
		d.AMQP = &AMQPConfig{}
		v = d.AMQP
	case TypeKafka:
		d.Kafka = &KafkaConfig{}
		v = d.Kafka
	default:
		return dest{}, nil
	}
	if err := json.Unmarshal([]byte(config), v); err != nil {
		return dest{}, fmt.Errorf("decode destination of %s: %w", id, err)
	}
	return d, nil
}

// setSecrets puts credentials into d's configuration.
func (d dest) setSecrets(sec destSecrets) {
	switch {
	case d.NATS != nil:
		d.NATS.Password, d.NATS.Token = sec.Password, sec.Token
	case d.AMQP != nil:
		d.AMQP.Password = sec.Password
	case d.Kafka != nil:
		d.Kafka.Password = sec.Password
	}
}

// viewDest is a destination as the API shows it: a sealed credential
// shows as "****" (for NATS as password, whichever of the two is set).
func viewDest(id, typ, config string, hasCreds bool) (dest, error) {
	d, err := decodeDest(id, typ, config)
	if err == nil && hasCreds {
		d.setSecrets(destSecrets{Password: "****"})
	}
	return d, err
}

// openDest rebuilds a broker endpoint's destination from its columns with
// its credentials opened.
func (s *Endpoints) openDest(id, typ, config string, sealed []byte) (dest, error) {
	d, err := decodeDest(id, typ, config)
	if err != nil || sealed == nil {
		return d, err
	}
	raw, err := s.master.Open(sealed, aad(id, "dest"))
	if err != nil {
		return dest{}, fmt.Errorf("open destination credentials of %s: %w", id, err)
	}
	var sec destSecrets
	if err := json.Unmarshal(raw, &sec); err != nil {
		return dest{}, fmt.Errorf("decode destination credentials of %s: %w", id, err)
	}
	d.setSecrets(sec)
	return d, nil
}

// credentialsMsg explains credentialsOK's refusal.
const credentialsMsg = "user and password must be printable and at most 255 and 1024 bytes"

// credentialsOK checks a broker user name and password (amqp, kafka):
// printable header-safe text of at most 255 and 1024 bytes.
func credentialsOK(user, password string) bool {
	return len(user) <= 255 && len(password) <= 1024 && isFieldValue(user) && isFieldValue(password)
}

// checkCAPEM checks a broker destination's extra CA roots (field names
// the JSON field): at most 64 KiB, and at least one PEM certificate when set.
func checkCAPEM(field, pem string) error {
	if len(pem) > 64<<10 {
		return &FieldError{Field: field, Msg: "at most 64 KiB"}
	}
	if pem != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
		return &FieldError{Field: field, Msg: "holds no PEM certificate"}
	}
	return nil
}
