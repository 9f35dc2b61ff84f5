package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"go.bug.st/serial"
	"go.bug.st/serial/enumerator"
)

// Sentinel errors of the device layer.
var (
	// ErrTimeout is returned by Read when the deadline passes before a byte
	// arrives. go.bug.st/serial reports a timed-out read as (0, nil), which
	// io.ReadFull would silently retry forever, so Read turns it into this.
	ErrTimeout = errors.New("device read timeout")
	// ErrDisconnected wraps the error of an exchange that lost the line
	// (unplugged cable, closed socket, pty hang-up).
	ErrDisconnected = errors.New("device disconnected")
	// ErrOffline is returned by Link.Do while the link is reconnecting.
	ErrOffline = errors.New("device offline")
	// ErrBadSpec is returned by Open for a port spec it cannot parse.
	ErrBadSpec = errors.New("bad port spec")
	// ErrNoSuchUSB is returned by Open when no USB serial port matches a
	// usb:VID:PID[:serial] spec.
	ErrNoSuchUSB = errors.New("no matching usb serial port")
)

// Port is an open line to a device. Read follows go.bug.st/serial: after
// SetReadTimeout(d) a read that sees no byte within d returns (0, nil); use
// the package's Read helper to turn that into ErrTimeout. A negative timeout
// blocks until data arrives or the port is closed.
type Port interface {
	io.ReadWriteCloser
	// SetReadTimeout bounds every following Read.
	SetReadTimeout(d time.Duration) error
}

// Parity of a serial line.
type Parity string

// Parity values. The zero value means no parity.
const (
	ParityNone Parity = ""
	ParityEven Parity = "E"
	ParityOdd  Parity = "O"
)

// PortOptions tunes Open. Zero values take the defaults documented on each
// field, which are 9600 baud 8N1; drivers pass their protocol's settings
// (ZVT: 8N2 at 9600, port 20007; Datecs: 8N1 at 115200).
type PortOptions struct {
	BaudRate int    // serial; 0 means 9600
	DataBits int    // serial; 0 means 8
	Parity   Parity // serial; "" means none
	StopBits int    // serial; 1 or 2, 0 means 1
	// DefaultTCPPort is used for a tcp://host spec without a port.
	DefaultTCPPort int
	// DialTimeout bounds a TCP connect; 0 means 5 s.
	DialTimeout time.Duration
}

func (o PortOptions) withDefaults() PortOptions {
	if o.BaudRate == 0 {
		o.BaudRate = 9600
	}
	if o.DataBits == 0 {
		o.DataBits = 8
	}
	if o.StopBits == 0 {
		o.StopBits = 1
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 5 * time.Second
	}
	return o
}

// Open opens the port named by spec:
//
//   - a device path such as /dev/ttyUSB0 (or a pty slave, or a symlink to one),
//   - tcp://host[:port] (port defaults to opts.DefaultTCPPort),
//   - usb:VID:PID[:serial], resolved through the USB enumerator at every
//     call, so a terminal that came back as /dev/ttyACM1 is still found.
//
// Errors wrap ErrBadSpec, ErrNoSuchUSB or the transport's own error; serial
// errors stay inspectable with errors.As(err, &serial.PortError{}).
func Open(ctx context.Context, spec string, opts PortOptions) (Port, error) {
	opts = opts.withDefaults()
	switch {
	case strings.HasPrefix(spec, "tcp://"):
		return openTCP(ctx, strings.TrimPrefix(spec, "tcp://"), opts)
	case strings.HasPrefix(spec, "usb:"):
		path, err := ResolveUSB(spec)
		if err != nil {
			return nil, err
		}
		return openSerial(path, opts)
	case spec == "":
		return nil, fmt.Errorf("open port: %w: empty", ErrBadSpec)
	default:
		return openSerial(spec, opts)
	}
}

func openSerial(path string, opts PortOptions) (Port, error) {
	mode := &serial.Mode{BaudRate: opts.BaudRate, DataBits: opts.DataBits}
	switch opts.Parity {
	case ParityNone:
		mode.Parity = serial.NoParity
	case ParityEven:
		mode.Parity = serial.EvenParity
	case ParityOdd:
		mode.Parity = serial.OddParity
	default:
		return nil, fmt.Errorf("open port %s: %w: parity %q", path, ErrBadSpec, opts.Parity)
	}
	switch opts.StopBits {
	case 1:
		mode.StopBits = serial.OneStopBit
	case 2:
		mode.StopBits = serial.TwoStopBits
	default:
		return nil, fmt.Errorf("open port %s: %w: stop bits %d", path, ErrBadSpec, opts.StopBits)
	}
	// InitialStatusBits stays nil: ptys have no modem lines and serial.Open
	// fails on them when asked to set DTR/RTS (research/payment-protocols.md §4.2).
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, fmt.Errorf("open port %s: %w", path, err)
	}
	return p, nil
}

// ResolveUSB finds the serial port path for a usb:VID:PID[:serial] spec.
// VID and PID are hex and compared case-insensitively.
func ResolveUSB(spec string) (string, error) {
	parts := splitUSB(spec)
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("resolve %s: %w: want usb:VID:PID[:serial]", spec, ErrBadSpec)
	}
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return "", fmt.Errorf("resolve %s: list ports: %w", spec, err)
	}
	return pickUSB(spec, parts, list)
}

// pickUSB returns the first USB port in list matching VID, PID and, when
// given, the serial number. /dev/ttyACM* numbering changes on replug, so
// the serial number is what tells two identical terminals apart.
func pickUSB(spec string, parts []string, list []*enumerator.PortDetails) (string, error) {
	for _, p := range list {
		if !p.IsUSB || !strings.EqualFold(p.VID, parts[0]) || !strings.EqualFold(p.PID, parts[1]) {
			continue
		}
		if len(parts) == 3 && p.SerialNumber != parts[2] {
			continue
		}
		return p.Name, nil
	}
	return "", fmt.Errorf("resolve %s: %w", spec, ErrNoSuchUSB)
}

// PortInfo describes one serial port found on the machine.
type PortInfo struct {
	Path         string
	IsUSB        bool
	VID, PID     string
	SerialNumber string
	Product      string
}

// Spec returns the usb:VID:PID[:serial] spec for a USB port and the path
// otherwise.
func (p PortInfo) Spec() string {
	if !p.IsUSB {
		return p.Path
	}
	s := "usb:" + p.VID + ":" + p.PID
	if p.SerialNumber != "" {
		s += ":" + p.SerialNumber
	}
	return s
}

// ListPorts lists the serial ports the enumerator finds. Ptys are never
// listed (go.bug.st/serial only scans tty device names).
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	out := make([]PortInfo, 0, len(list))
	for _, p := range list {
		out = append(out, PortInfo{Path: p.Name, IsUSB: p.IsUSB, VID: p.VID, PID: p.PID,
			SerialNumber: p.SerialNumber, Product: p.Product})
	}
	return out, nil
}

func openTCP(ctx context.Context, hostport string, opts PortOptions) (Port, error) {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		if opts.DefaultTCPPort == 0 {
			return nil, fmt.Errorf("open tcp://%s: %w: no port", hostport, ErrBadSpec)
		}
		hostport = net.JoinHostPort(hostport, strconv.Itoa(opts.DefaultTCPPort))
	}
	d := net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 15 * time.Second}
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, fmt.Errorf("open tcp://%s: %w", hostport, err)
	}
	return &tcpPort{c: c, timeout: -1}, nil
}

// tcpPort gives a net.Conn the serial port's read-timeout semantics, so the
// drivers' read helpers work unchanged on both transports.
type tcpPort struct {
	c       net.Conn
	timeout time.Duration
}

var _ Port = (*tcpPort)(nil)

func (t *tcpPort) Read(b []byte) (int, error) {
	if t.timeout >= 0 {
		if err := t.c.SetReadDeadline(time.Now().Add(t.timeout)); err != nil {
			return 0, err
		}
	} else if err := t.c.SetReadDeadline(time.Time{}); err != nil {
		return 0, err
	}
	n, err := t.c.Read(b)
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		return 0, nil
	}
	return n, err
}

func (t *tcpPort) Write(b []byte) (int, error) { return t.c.Write(b) }
func (t *tcpPort) Close() error                { return t.c.Close() }

func (t *tcpPort) SetReadTimeout(d time.Duration) error {
	t.timeout = d
	return nil
}

func splitUSB(spec string) []string { return strings.Split(strings.TrimPrefix(spec, "usb:"), ":") }
