package escpos

// Control codes.
const (
	LF  = 0x0A
	DLE = 0x10
	EOT = 0x04
	ESC = 0x1B
	GS  = 0x1D
)

// Init is ESC @ (1B 40): clears the print buffer and resets the modes to
// their power-on values ("ESC @ Initialize printer").
func Init() []byte { return []byte{ESC, '@'} }

// SelectCodeTable is ESC t n (1B 74 n): selects character code table n
// for the bytes 80h–FFh ("ESC t Select character code table").
func SelectCodeTable(n byte) []byte { return []byte{ESC, 't', n} }

// Bold is ESC E n (1B 45 n): emphasized mode on when the lowest bit of n
// is 1 ("ESC E Turn emphasized mode on/off").
func Bold(on bool) []byte { return []byte{ESC, 'E', b2u(on)} }

// Justify is ESC a n (1B 61 n): 0 left, 1 centre, 2 right ("ESC a Select
// justification"). It takes effect at the beginning of a line.
func Justify(n byte) []byte { return []byte{ESC, 'a', n} }

// Size is GS ! n (1D 21 n): bits 4–6 are the width magnification − 1,
// bits 0–2 the height magnification − 1 ("GS ! Select character size").
// Size(2, 2) is 1D 21 11, double width and height.
func Size(width, height int) []byte {
	w := byte(clamp(width, 1, 8) - 1)
	h := byte(clamp(height, 1, 8) - 1)
	return []byte{GS, '!', w<<4 | h}
}

// Feed is ESC d n (1B 64 n): prints the buffer and feeds n lines ("ESC d
// Print and feed n lines").
func Feed(n byte) []byte { return []byte{ESC, 'd', n} }

// CutAfterFeed is GS V m n with m = 66 (1D 56 42 n), function B: feeds the
// paper to the cutting position plus n motion units and cuts, leaving one
// point uncut (partial cut) ("GS V Select cut mode and cut paper").
func CutAfterFeed(n byte) []byte { return []byte{GS, 'V', 66, n} }

// RealtimeStatus is DLE EOT n (10 04 n): the printer answers at once, even
// offline or with its buffer held, with one status byte ("DLE EOT
// Transmit real-time status"): n = 1 printer, 2 offline cause, 3 error
// cause, 4 roll paper sensor.
func RealtimeStatus(n byte) []byte { return []byte{DLE, EOT, n} }

// Real-time status requests.
const (
	StatusPrinter byte = 1
	StatusOffline byte = 2
	StatusError   byte = 3
	StatusPaper   byte = 4
)

// AutoStatusBack is GS a n (1D 61 n): enables Automatic Status Back for the
// conditions whose bits are set (bit 0 drawer, 1 online/offline, 2 error,
// 3 roll paper sensor); the printer then sends 4 status bytes whenever one
// of them changes, and once at once ("GS a Enable/disable Automatic
// Status Back (ASB)").
func AutoStatusBack(n byte) []byte { return []byte{GS, 'a', n} }

// ASBAll enables ASB for online/offline, errors and the paper sensor (not
// the drawer).
const ASBAll byte = 0x0E

// PaperSensorStatus is GS r 1 (1D 72 01): the printer answers with its
// paper sensor status ("GS r Transmit status"). Unlike DLE EOT it is
// processed in turn with the data before it, so its answer also means
// everything sent before it has been printed.
func PaperSensorStatus() []byte { return []byte{GS, 'r', 1} }

// qr builds GS ( k pL pH cn fn [params] with cn = 49 (QR Code):
// "GS ( k <Function 165…181>".
func qr(fn byte, params ...byte) []byte {
	n := len(params) + 2
	out := []byte{GS, '(', 'k', byte(n), byte(n >> 8), 49, fn}
	return append(out, params...)
}

// QR models (function 165, n1).
const (
	QRModel1     byte = 49
	QRModel2     byte = 50
	QRMicroModel byte = 51
)

// QR error correction levels (function 169, n).
const (
	QRLevelL byte = 48 // 7 %
	QRLevelM byte = 49 // 15 %
	QRLevelQ byte = 50 // 25 %
	QRLevelH byte = 51 // 30 %
)

// QRSelectModel is function 165 (fn = 65): 1D 28 6B 04 00 31 41 n1 00.
func QRSelectModel(model byte) []byte { return qr(65, model, 0) }

// QRModuleSize is function 167 (fn = 67): 1D 28 6B 03 00 31 43 n, the
// module (dot square) size, 1–16 dots.
func QRModuleSize(dots byte) []byte { return qr(67, byte(clamp(int(dots), 1, 16))) }

// QRErrorLevel is function 169 (fn = 69): 1D 28 6B 03 00 31 45 n.
func QRErrorLevel(level byte) []byte { return qr(69, level) }

// QRStore is function 180 (fn = 80): 1D 28 6B pL pH 31 50 30 d1…dk with
// pL + 256·pH = k + 3, storing the symbol data.
func QRStore(data []byte) []byte { return qr(80, append([]byte{48}, data...)...) }

// QRPrint is function 181 (fn = 81): 1D 28 6B 03 00 31 51 30, printing the
// stored symbol.
func QRPrint() []byte { return qr(81, 48) }

// QRMaxData is the most bytes function 180 stores for a model 2 symbol
// (version 40, level L, byte mode: 2953; the reference gives k ≤ 7089 for
// numeric data only).
const QRMaxData = 2953

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func clamp(v, lo, hi int) int { return max(lo, min(v, hi)) }
