package escpos

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/skip2/go-qrcode"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/gomonobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Receipt is one cut receipt as printed.
type Receipt struct {
	Seq   int // 1, 2, … since the simulator started
	Time  time.Time
	Width int // characters per line
	Lines []Line
}

// Line is one printed line: text with its modes, or a QR code.
type Line struct {
	Text   string
	Bold   bool
	Double bool
	Align  int    // 0 left, 1 centre, 2 right
	QR     string // the decoded payload of a printed QR code; Text is then empty
}

// QRPayloads returns the payloads of the receipt's QR codes, in order.
func (r Receipt) QRPayloads() []string {
	var out []string
	for _, l := range r.Lines {
		if l.QR != "" {
			out = append(out, l.QR)
		}
	}
	return out
}

// Text renders the receipt for a console: each line aligned in the
// receipt's width (double-size lines in half of it, letters spaced), and
// each QR code drawn with block characters under its payload.
func (r Receipt) Text() string {
	w := max(r.Width, 16)
	var b strings.Builder
	rule := strings.Repeat("=", w)
	fmt.Fprintf(&b, "%s\n", rule)
	for _, l := range r.Lines {
		if l.QR != "" {
			fmt.Fprintf(&b, "%s\n", align("[QR] "+l.QR, 1, w))
			if q, err := qrcode.New(l.QR, qrcode.Medium); err == nil {
				for _, row := range strings.Split(strings.TrimRight(q.ToSmallString(false), "\n"), "\n") {
					fmt.Fprintf(&b, "%s\n", align(row, 1, w))
				}
			}
			continue
		}
		text := l.Text
		if l.Double {
			text = spaced(text)
		}
		fmt.Fprintf(&b, "%s\n", strings.TrimRight(align(text, l.Align, w), " "))
	}
	fmt.Fprintf(&b, "%s\n", strings.Repeat("- ", w/2)) // the cut
	return b.String()
}

func spaced(s string) string {
	r := []rune(s)
	out := make([]string, len(r))
	for i, c := range r {
		out[i] = string(c)
	}
	return strings.Join(out, " ")
}

func align(s string, a, w int) string {
	n := utf8.RuneCountInString(s)
	if n >= w {
		return s
	}
	switch a {
	case 1:
		return strings.Repeat(" ", (w-n)/2) + s
	case 2:
		return strings.Repeat(" ", w-n) + s
	}
	return s
}

// Rendering metrics of the PNG: a 12×24-dot cell (Epson font A) on a
// 512-dot head, 8 dots per mm.
const (
	cellW  = 12
	cellH  = 24
	margin = 16
)

// PNG draws the receipt as the paper would look: the text in Go Mono (which
// has every Latin-2 letter), bold and double size as printed, and each QR
// code drawn from its decoded payload with 6-dot modules.
func (r Receipt) PNG() ([]byte, error) {
	w := max(r.Width, 16)
	fs, err := faces()
	if err != nil {
		return nil, err
	}
	regular, bold, big := fs[0], fs[1], fs[2]
	facesMu.Lock() // an opentype face is not safe for concurrent use
	defer facesMu.Unlock()
	qrs := map[int][][]bool{}
	height := 2 * margin
	for i, l := range r.Lines {
		switch {
		case l.QR != "":
			q, err := qrcode.New(l.QR, qrcode.Medium)
			if err != nil {
				return nil, fmt.Errorf("draw QR %q: %w", l.QR, err)
			}
			qrs[i] = q.Bitmap()
			height += len(qrs[i])*6 + cellH
		case l.Double:
			height += 2 * cellH
		default:
			height += cellH
		}
	}
	width := w*cellW + 2*margin
	img := image.NewGray(image.Rect(0, 0, width, height))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	y := margin
	for i, l := range r.Lines {
		if bm, ok := qrs[i]; ok {
			size := len(bm) * 6
			x0 := (width - size) / 2
			for yy, row := range bm {
				for xx, on := range row {
					if on {
						draw.Draw(img, image.Rect(x0+xx*6, y+yy*6, x0+xx*6+6, y+yy*6+6), image.Black, image.Point{}, draw.Src)
					}
				}
			}
			y += size + cellH
			continue
		}
		f, cw, ch := regular, cellW, cellH
		if l.Bold {
			f = bold
		}
		if l.Double {
			f, cw, ch = big, 2*cellW, 2*cellH
		}
		n := utf8.RuneCountInString(l.Text)
		x := margin
		switch l.Align {
		case 1:
			x = (width - n*cw) / 2
		case 2:
			x = width - margin - n*cw
		}
		d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: f,
			Dot: fixed.P(max(x, 0), y+ch-ch/5)}
		for _, c := range l.Text {
			d.DrawString(string(c))
			x += cw
			d.Dot.X = fixed.I(max(x, 0))
		}
		y += ch
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode receipt png: %w", err)
	}
	return buf.Bytes(), nil
}

var facesMu sync.Mutex

// faces parses the fonts once: regular, bold, and bold double size.
var faces = sync.OnceValues(func() ([3]font.Face, error) {
	var out [3]font.Face
	for i, f := range []struct {
		ttf  []byte
		size float64
	}{{gomono.TTF, cellH - 4}, {gomonobold.TTF, cellH - 4}, {gomonobold.TTF, 2*cellH - 8}} {
		fc, err := face(f.ttf, f.size)
		if err != nil {
			return out, err
		}
		out[i] = fc
	}
	return out, nil
})

func face(ttf []byte, size float64) (font.Face, error) {
	f, err := opentype.Parse(ttf)
	if err != nil {
		return nil, fmt.Errorf("parse font: %w", err)
	}
	fc, err := opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, fmt.Errorf("font face: %w", err)
	}
	return fc, nil
}
