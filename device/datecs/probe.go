package datecs

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/posgate/posgate/device"
)

// ErrNotDatecs means nothing on the port answered a Datecs device-info
// request in either framing.
var ErrNotDatecs = errors.New("no Datecs printer answered")

// Probe finds out which framing the printer on p speaks by asking for its
// device info (5Ah): first as an X printer ("1⇥", TAB answer with an error
// field), then as an old ISL printer ("1", comma answer). Each try gets
// two sends. It leaves p open; pass the profile to New in Options.Profile.
func Probe(ctx context.Context, p device.Port, opts Options) (Profile, device.PrinterInfo, error) {
	opts = opts.withDefaults()
	opts.Resends = 1

	opts.Profile = X
	ans, errX := NewConn(p, opts).Exchange(ctx, cmdInfo, Params("1"))
	if errX == nil {
		f := Fields(ans.Data)
		if field(f, 0) == "0" && len(f) >= 9 {
			return X, device.PrinterInfo{Model: f[1], Firmware: strings.Join(f[2:5], " "), Serial: f[7], FiscalMemory: f[8]}, nil
		}
		errX = fmt.Errorf("device info answer %q", f)
	}
	if ctx.Err() != nil {
		return Profile{}, device.PrinterInfo{}, ctx.Err()
	}

	opts.Profile = ISL
	ans, errISL := NewConn(p, opts).Exchange(ctx, cmdInfo, []byte("1"))
	if errISL == nil {
		// Name,FwRev FwDate FwTime,Checksum,Sw,SerialNumber,FMNumber
		f := strings.Split(fromCP1251(ans.Data), ",")
		if len(f) >= 6 {
			return ISL, device.PrinterInfo{Model: f[0], Firmware: f[1], Serial: f[4], FiscalMemory: f[5]}, nil
		}
		errISL = fmt.Errorf("device info answer %q", ans.Data)
	}
	return Profile{}, device.PrinterInfo{}, fmt.Errorf("probe: %w (X: %v; ISL: %v)", ErrNotDatecs, errX, errISL)
}
