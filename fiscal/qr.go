package fiscal

import (
	"fmt"

	"github.com/skip2/go-qrcode"
)

// QRPNG renders text (an invoice's verification URL) as a PNG QR code
// of size×size pixels, with medium (15 %) error correction: enough for a
// thermal print that is a little worn, small enough for a 200-character URL.
func QRPNG(text string, size int) ([]byte, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, size)
	if err != nil {
		return nil, fmt.Errorf("render QR code: %w", err)
	}
	return png, nil
}
