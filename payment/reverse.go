package payment

import (
	"context"

	"github.com/posgate/posgate/device"
)

// reversible reports whether the terminal can be asked to void r: by
// its receipt number, or by the terminal's own reference where the
// terminal reverses by reference.
func reversible(r *record) bool {
	return r.ReceiptNumber != 0 || (r.Info != nil && r.Info.Ref != "")
}

// reverseOn voids orig on d: by the terminal's reference when d reverses
// by reference and one was recorded, else by receipt number.
func reverseOn(ctx context.Context, d device.Terminal, orig *record, h device.TxEventHandler) (device.TxResult, error) {
	return reverseInfo(ctx, d, orig.Info, orig.ReceiptNumber, h)
}

func reverseInfo(ctx context.Context, d device.Terminal, info *device.TxInfo, receiptNo int, h device.TxEventHandler) (device.TxResult, error) {
	if rr, ok := d.(device.RefReverser); ok && info != nil && info.Ref != "" {
		return rr.ReverseRef(ctx, info.Ref, h)
	}
	return d.Reverse(ctx, receiptNo, h)
}
