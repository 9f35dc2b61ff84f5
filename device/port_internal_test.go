package device

import (
	"errors"
	"testing"

	"go.bug.st/serial/enumerator"
)

func TestPickUSB(t *testing.T) {
	list := []*enumerator.PortDetails{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "0B00", PID: "0080", SerialNumber: "AAA"},
		{Name: "/dev/ttyACM1", IsUSB: true, VID: "0B00", PID: "0080", SerialNumber: "BBB"},
	}
	tests := []struct {
		spec, want string
		err        error
	}{
		{"usb:0b00:0080", "/dev/ttyACM0", nil},
		{"usb:0B00:0080:BBB", "/dev/ttyACM1", nil},
		{"usb:0B00:0080:CCC", "", ErrNoSuchUSB},
		{"usb:1234:5678", "", ErrNoSuchUSB},
	}
	for _, tt := range tests {
		parts := splitUSB(tt.spec)
		got, err := pickUSB(tt.spec, parts, list)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("pickUSB(%s)=%q, %v; want %q, %v", tt.spec, got, err, tt.want, tt.err)
		}
	}
}
