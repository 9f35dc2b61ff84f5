package escpos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posgate/posgate/device"
)

// usbmiscRoot is where Linux lists USB printer-class devices (usblp): each
// /sys/class/usbmisc/lpN links to its interface, whose parent holds the
// USB device's idVendor, idProduct and serial. Tests replace it.
var usbmiscRoot = "/sys/class/usbmisc"

// lpDir is where the usblp driver creates the device nodes.
var lpDir = "/dev/usb"

// OpenPort opens a printer port. Besides what device.Open takes (a serial
// path, tcp://host[:9100], usb:VID:PID[:serial] of a USB serial adapter),
// it opens USB printer-class devices:
//
//   - a path under /dev/usb/ (e.g. /dev/usb/lp0), or a symlink to one, is
//     opened as a file,
//   - usb:VID:PID[:serial] is looked up first among printer-class devices
//     (sysfs usbmisc), then among serial ports, at every open, so a
//     printer that came back as lp1 is still found.
//
// Use it as device.LinkOptions.Open.
func OpenPort(ctx context.Context, spec string, opts device.PortOptions) (device.Port, error) {
	switch {
	case isLP(spec):
		return openFile(spec)
	case strings.HasPrefix(spec, "usb:"):
		path, err := ResolveUSBPrinter(spec)
		if err == nil {
			return openFile(path)
		}
		if !errors.Is(err, device.ErrNoSuchUSB) {
			return nil, err
		}
	}
	return device.Open(ctx, spec, opts)
}

// isLP reports whether spec is a usblp node, or a symlink to one (a udev
// SYMLINK such as /dev/posgate-receipt): those are opened as files, since
// they are no ttys and serial.Open would fail on them.
func isLP(spec string) bool {
	if !filepath.IsAbs(spec) {
		return false
	}
	if strings.HasPrefix(spec, lpDir+"/") {
		return true
	}
	real, err := filepath.EvalSymlinks(spec)
	return err == nil && strings.HasPrefix(real, lpDir+"/")
}

// ResolveUSBPrinter finds the /dev/usb/lpN node of the printer-class
// device with a usb:VID:PID[:serial] spec. VID and PID are hex and
// compared case-insensitively. It returns an error wrapping
// device.ErrNoSuchUSB when none matches.
func ResolveUSBPrinter(spec string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(spec, "usb:"), ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("resolve %s: %w: want usb:VID:PID[:serial]", spec, device.ErrBadSpec)
	}
	for _, p := range ListUSBPrinters() {
		if !strings.EqualFold(p.VID, parts[0]) || !strings.EqualFold(p.PID, parts[1]) {
			continue
		}
		if len(parts) == 3 && p.SerialNumber != parts[2] {
			continue
		}
		return p.Path, nil
	}
	return "", fmt.Errorf("resolve %s: %w", spec, device.ErrNoSuchUSB)
}

// ListUSBPrinters lists the USB printer-class devices the usblp driver
// serves, with their ids, for posgate ports. It finds none when the
// driver is not loaded, or off Linux.
func ListUSBPrinters() []device.PortInfo {
	ents, err := os.ReadDir(usbmiscRoot)
	if err != nil {
		return nil
	}
	var out []device.PortInfo
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "lp") {
			continue
		}
		iface, err := filepath.EvalSymlinks(filepath.Join(usbmiscRoot, e.Name(), "device"))
		if err != nil {
			continue
		}
		usb := filepath.Dir(iface) // the interface's parent is the USB device
		out = append(out, device.PortInfo{Path: filepath.Join(lpDir, e.Name()), IsUSB: true,
			VID: readAttr(usb, "idVendor"), PID: readAttr(usb, "idProduct"),
			SerialNumber: readAttr(usb, "serial"), Product: readAttr(usb, "product")})
	}
	return out
}

func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// filePort is a character device (usblp) as a device.Port. usblp supports
// poll, so Go's poller gives reads a deadline; a node that does not
// (os.ErrNoDeadline) gets blocking reads, ended by Close.
type filePort struct {
	f       *os.File
	timeout time.Duration
}

var _ device.Port = (*filePort)(nil)

func openFile(path string) (device.Port, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open port %s: %w", path, err)
	}
	return &filePort{f: f, timeout: -1}, nil
}

func (p *filePort) Read(b []byte) (int, error) {
	var dl time.Time
	if p.timeout >= 0 {
		dl = time.Now().Add(p.timeout)
	}
	if err := p.f.SetReadDeadline(dl); err != nil && !errors.Is(err, os.ErrNoDeadline) {
		return 0, err
	}
	n, err := p.f.Read(b)
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return n, err
}

func (p *filePort) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *filePort) Close() error                { return p.f.Close() }

func (p *filePort) SetReadTimeout(d time.Duration) error {
	p.timeout = d
	return nil
}
