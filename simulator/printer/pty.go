//go:build linux || darwin

package printer

import (
	"fmt"
	"os"

	"github.com/creack/pty"
)

// PTY is a pseudo-terminal pair: the simulator serves the master side and
// the driver opens Name(), the slave, with serial.Open as it would a real
// port.
type PTY struct {
	master, slave *os.File
}

// OpenPTY opens a pseudo-terminal pair. The slave stays open in the
// simulator too, so that the master does not see EIO between two driver
// connections (a pty whose slave has no open file reports a hang-up).
func OpenPTY() (*PTY, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open pty: %w", err)
	}
	return &PTY{master: m, slave: s}, nil
}

// Name is the path of the slave side, e.g. /dev/pts/3.
func (t *PTY) Name() string { return t.slave.Name() }

// Read reads from the master side.
func (t *PTY) Read(b []byte) (int, error) { return t.master.Read(b) }

// Write writes to the master side.
func (t *PTY) Write(b []byte) (int, error) { return t.master.Write(b) }

// Close closes both sides.
func (t *PTY) Close() error {
	err := t.master.Close()
	if err2 := t.slave.Close(); err == nil {
		err = err2
	}
	return err
}
