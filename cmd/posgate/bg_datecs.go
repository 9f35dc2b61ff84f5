package main

import (
	"context"

	"github.com/posgate/posgate/device"
	"github.com/posgate/posgate/device/datecs"
	"github.com/posgate/posgate/fiscal/bg"
)

// bgSalePrinter puts a Datecs fiscal printer behind bg.SalePrinter: the
// UNP goes into the receipt's header (30h syntax 2; a storno's, 2Bh), and
// the driver reads back the QR data and fiscal memory after close (4Ah).
// Its other methods are the driver's, so it serves every profile.
type bgSalePrinter struct{ *datecs.Device }

func (p bgSalePrinter) PrintSale(ctx context.Context, unp string, r device.Receipt) (bg.Sale, error) {
	if r.Storno != nil {
		r.Storno.UniqueSaleNumber = unp
	} else {
		r.Header.UniqueSaleNumber = unp
	}
	res, err := p.PrintReceipt(ctx, r)
	if err != nil {
		return bg.Sale{}, err
	}
	return bg.Sale{ReceiptResult: res, QRData: res.QRData, FiscalMemory: res.FiscalMemorySerial}, nil
}
