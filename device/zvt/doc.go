// Package zvt speaks ZVT (PA00P015/PA00P016), the German ECR ↔ payment
// terminal protocol, on both sides: Client is the ECR that posgate runs
// (it implements device.Terminal), and the framing, APDU, BMP and TLV codecs
// and the two transports are exported for the terminal simulator.
//
// Framing is pure (frame.go, apdu.go, bmp.go, tlv.go: no I/O); transport.go
// runs the serial (DLE STX … DLE ETX CRC, ACK/NAK, T1/T2, three tries) and
// TCP (bare APDUs, reassembled across reads) exchanges on a narrow Line;
// client.go adds the command set, master rights and T3/T4. It does not own
// the port (device.Link does) and does not persist anything: callers get
// the Status-Information through a device.TxEventHandler before it is
// acknowledged.
package zvt
