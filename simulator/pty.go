//go:build linux || darwin

package simulator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// PTYOptions configures ServePTY.
type PTYOptions struct {
	// Link, if set, is a symlink kept pointing at the current pty slave, so
	// a driver configured with it finds the simulator again after a
	// simulated unplug (pty names change with every new pty).
	Link string
	Log  zerolog.Logger
}

// PTY serves a Handler on a pseudo-terminal. The simulator holds the master;
// the driver opens Path() like a real serial port.
type PTY struct {
	opts   PTYOptions
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex // guards slave
	slave string
}

// ServePTY opens a pty, puts both ends in raw mode and serves h on the
// master until Close or ctx ends. Raw mode matters: a fresh pty is cooked,
// and ZVT bytes such as 03 (VINTR), 15 (VKILL) and 11/13 (XON/XOFF) would be
// eaten by the line discipline (research/payment-protocols.md §4.2).
//
// The simulator keeps its own slave fd open, so the master never reads EIO
// while no driver has the port open.
func ServePTY(ctx context.Context, h Handler, opts PTYOptions) (*PTY, error) {
	master, slave, err := openRaw()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &PTY{opts: opts, cancel: cancel, done: make(chan struct{}), slave: slave.Name()}
	if err := p.link(slave.Name()); err != nil {
		master.Close()
		slave.Close()
		cancel()
		return nil, err
	}
	go p.run(ctx, h, master, slave)
	return p, nil
}

// Path returns what a driver should open: the link if one was asked for,
// else the current slave device.
func (p *PTY) Path() string {
	if p.opts.Link != "" {
		return p.opts.Link
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slave
}

// Close stops serving, closes the pty and waits.
func (p *PTY) Close() error {
	p.cancel()
	<-p.done
	if p.opts.Link != "" {
		os.Remove(p.opts.Link)
	}
	return nil
}

func (p *PTY) run(ctx context.Context, h Handler, master, slave *os.File) {
	defer close(p.done)
	for {
		stop := context.AfterFunc(ctx, func() { master.Close() })
		err := h(ctx, master)
		stop()
		if ctx.Err() != nil {
			master.Close()
			slave.Close()
			return
		}
		if !errors.Is(err, ErrHangup) {
			if err != nil {
				p.opts.Log.Debug().Err(err).Msg("simulator session ended")
			}
			// Don't spin if the handler keeps failing at once.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		// Hang up: the driver's next read fails, like an unplugged cable.
		master.Close()
		slave.Close()
		p.opts.Log.Info().Msg("simulator dropped the line")
		for {
			master, slave, err = openRaw()
			if err == nil {
				if err = p.link(slave.Name()); err == nil {
					break
				}
				master.Close()
				slave.Close()
			}
			p.opts.Log.Error().Err(err).Msg("simulator pty reopen failed")
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// link points the symlink at slave, atomically through a rename.
func (p *PTY) link(slave string) error {
	p.mu.Lock()
	p.slave = slave
	p.mu.Unlock()
	if p.opts.Link == "" {
		return nil
	}
	tmp := filepath.Join(filepath.Dir(p.opts.Link), "."+filepath.Base(p.opts.Link)+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(slave, tmp); err != nil {
		return fmt.Errorf("link pty %s: %w", p.opts.Link, err)
	}
	if err := os.Rename(tmp, p.opts.Link); err != nil {
		return fmt.Errorf("link pty %s: %w", p.opts.Link, err)
	}
	return nil
}

func openRaw() (master, slave *os.File, err error) {
	master, slave, err = pty.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	for _, f := range []*os.File{master, slave} {
		if err := makeRaw(int(f.Fd())); err != nil {
			master.Close()
			slave.Close()
			return nil, nil, fmt.Errorf("make pty raw: %w", err)
		}
	}
	// pty.Open returns a blocking master: a Read stuck in the syscall
	// would ignore both SetReadDeadline and Close. A non-blocking duplicate
	// goes through Go's poller, where both work.
	fd, err := unix.Dup(int(master.Fd()))
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	name := master.Name()
	master.Close()
	if err != nil {
		slave.Close()
		return nil, nil, fmt.Errorf("make pty master non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), name), slave, nil
}

// makeRaw does what cfmakeraw(3) does.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, ioctlSetTermios, t)
}
