package escpos

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posgate/posgate/device"
)

// bytesPort serves fixed bytes to reads and then times out.
type bytesPort struct{ data []byte }

func (b *bytesPort) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		time.Sleep(time.Millisecond)
		return 0, nil
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}
func (b *bytesPort) Write(p []byte) (int, error)        { return len(p), nil }
func (b *bytesPort) Close() error                       { return nil }
func (b *bytesPort) SetReadTimeout(time.Duration) error { return nil }

// An ASB message arriving before an answer is consumed whole, even though
// its bytes 2–4 have the form of a GS r answer (0xx0xxxx); the reference's
// identification rule ("GS a", notes) tells them apart by the first byte.
func TestAwaitSkipsASB(t *testing.T) {
	// ASB: offline, paper end (18 00 0C 00); then the GS r 1 answer 00.
	p := New(&bytesPort{data: []byte{0x18, 0x00, 0x0C, 0x00, 0x00}}, Options{})
	b, err := p.await(context.Background(), time.Now().Add(time.Second), isPlainReply)
	if err != nil || b != 0x00 {
		t.Fatalf("await = %02X, %v; want the GS r answer 00", b, err)
	}
	st, ok := p.LastStatus()
	if !ok || !st.PaperEnd || !st.Offline {
		t.Fatalf("LastStatus = %+v, %v; want the ASB's paper end", st, ok)
	}
	if len(p.pending) != 0 {
		t.Errorf("%d bytes left over", len(p.pending))
	}
	// And a DLE EOT answer (0xx1xx10) behind another ASB.
	p = New(&bytesPort{data: []byte{0x10, 0x00, 0x00, 0x00, 0x16}}, Options{})
	if b, err := p.await(context.Background(), time.Now().Add(time.Second), isRealtimeReply); err != nil || b != 0x16 {
		t.Fatalf("await = %02X, %v; want 16", b, err)
	}
	// Nothing: ErrNoAnswer, which the print jobs treat as not ready.
	p = New(&bytesPort{}, Options{})
	if _, err := p.await(context.Background(), time.Now().Add(20*time.Millisecond), isRealtimeReply); !errors.Is(err, device.ErrTimeout) {
		t.Fatalf("await = %v, want ErrTimeout", err)
	}
}

// usb:VID:PID finds the usblp node through a sysfs tree laid out as Linux
// lays it out: /sys/class/usbmisc/lpN/device → the interface, whose parent
// is the USB device with idVendor, idProduct and serial.
func TestResolveUSBPrinter(t *testing.T) {
	root := t.TempDir()
	dev := filepath.Join(root, "devices", "usb1", "1-2")
	iface := filepath.Join(dev, "1-2:1.0")
	if err := os.MkdirAll(iface, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"idVendor": "04b8\n", "idProduct": "0e15\n", "serial": "X5Z1234\n", "product": "TM-T20II\n"} {
		if err := os.WriteFile(filepath.Join(dev, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	class := filepath.Join(root, "class", "usbmisc")
	if err := os.MkdirAll(filepath.Join(class, "lp3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(iface, filepath.Join(class, "lp3", "device")); err != nil {
		t.Fatal(err)
	}
	old := usbmiscRoot
	usbmiscRoot = class
	t.Cleanup(func() { usbmiscRoot = old })

	for spec, want := range map[string]string{
		"usb:04B8:0E15":         "/dev/usb/lp3",
		"usb:04b8:0e15:X5Z1234": "/dev/usb/lp3",
	} {
		if got, err := ResolveUSBPrinter(spec); err != nil || got != want {
			t.Errorf("ResolveUSBPrinter(%s) = %q, %v; want %q", spec, got, err, want)
		}
	}
	for _, spec := range []string{"usb:04b8:0e16", "usb:04b8:0e15:OTHER"} {
		if _, err := ResolveUSBPrinter(spec); !errors.Is(err, device.ErrNoSuchUSB) {
			t.Errorf("ResolveUSBPrinter(%s) = %v, want ErrNoSuchUSB", spec, err)
		}
	}
	list := ListUSBPrinters()
	if len(list) != 1 || list[0].Spec() != "usb:04b8:0e15:X5Z1234" || list[0].Product != "TM-T20II" || list[0].Path != "/dev/usb/lp3" {
		t.Errorf("ListUSBPrinters = %+v", list)
	}
	if _, err := ResolveUSBPrinter("usb:04b8"); !errors.Is(err, device.ErrBadSpec) {
		t.Errorf("ResolveUSBPrinter(usb:04b8) = %v, want ErrBadSpec", err)
	}
}

// A character device node is read with the serial port's timeout
// semantics: a read that sees nothing within the timeout is (0, nil).
func TestFilePort(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "lp0")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	// Open both ends: O_RDWR on a FIFO does not block.
	p, err := openFile(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetReadTimeout(20 * time.Millisecond)
	var b [4]byte
	start := time.Now()
	if n, err := p.Read(b[:]); n != 0 || err != nil {
		t.Fatalf("idle Read = %d, %v; want 0, nil", n, err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("idle Read ignored the timeout")
	}
	if _, err := p.Write([]byte{0x12}); err != nil {
		t.Fatal(err)
	}
	if n, err := device.Read(context.Background(), p, b[:], time.Now().Add(time.Second)); n != 1 || err != nil || b[0] != 0x12 {
		t.Fatalf("Read = %d % X, %v; want 12", n, b[:n], err)
	}
}

// A udev SYMLINK to a usblp node is opened as a file, not as a tty.
func TestIsLP(t *testing.T) {
	dir := t.TempDir()
	old := lpDir
	lpDir = filepath.Join(dir, "usb")
	t.Cleanup(func() { lpDir = old })
	if err := os.MkdirAll(lpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(lpDir, "lp0")
	if err := os.WriteFile(node, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "posgate-receipt")
	if err := os.Symlink(node, link); err != nil {
		t.Fatal(err)
	}
	for spec, want := range map[string]bool{node: true, link: true, "/dev/ttyUSB0": false, "tcp://127.0.0.1:9100": false, "usb:04b8:0e15": false} {
		if got := isLP(spec); got != want {
			t.Errorf("isLP(%s) = %v, want %v", spec, got, want)
		}
	}
}

// FuzzAwait: whatever the printer sends, await ends (with a byte of the
// class asked for, or ErrNoAnswer when the bytes run out), never returns a
// byte of an ASB message, and any status it keeps is a valid ASB.
func FuzzAwait(f *testing.F) {
	f.Add([]byte{0x18, 0x00, 0x0C, 0x00, 0x00})
	f.Add([]byte{0x10, 0x00, 0x00, 0x00, 0x16, 0x12})
	f.Add([]byte{0x12, 0x10, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := New(&bytesPort{data: append([]byte(nil), b...)}, Options{})
		for _, accept := range []func(byte) bool{isPlainReply, isRealtimeReply} {
			got, err := p.await(context.Background(), time.Now().Add(5*time.Millisecond), accept)
			if err != nil {
				if !errors.Is(err, ErrNoAnswer) {
					t.Fatalf("await: %v", err)
				}
				return
			}
			if !accept(got) {
				t.Fatalf("await returned %02X, which the class refuses", got)
			}
			if len(p.asb) != 0 {
				t.Fatalf("returned a byte in the middle of an ASB message")
			}
		}
		if st, ok := p.LastStatus(); ok && len(st.Raw) != 4 {
			t.Fatalf("status from %d bytes", len(st.Raw))
		}
	})
}
