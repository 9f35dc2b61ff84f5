//go:build linux

package powerfs

import (
	"maps"
	"math/rand/v2"
	"slices"
	"time"
)

// Loss says what Reset does with what was written but never fsynced.
type Loss int

const (
	// LossDrop throws away everything not fsynced: the disk holds exactly
	// what the fsyncs made durable.
	LossDrop Loss = iota
	// LossRandom keeps a random half of what was not fsynced: each
	// unsynced write survives 512-byte sector by sector, independently
	// and regardless of order (torn and reordered writes), and each
	// directory keeps all or none of its unsynced entry changes.
	LossRandom
)

func (l Loss) String() string {
	switch l {
	case LossDrop:
		return "drop"
	case LossRandom:
		return "random"
	}
	return "unknown"
}

// sectorSize is the unit in which LossRandom tears writes. SQLite assumes
// a power cut never garbles the bytes around a sector it did not write
// (SQLITE_IOCAP_POWERSAFE_OVERWRITE), which this respects.
const sectorSize = 512

// node is a *file or a *dir.
type node interface {
	ino() uint64
}

// file is a regular file's two states. Invariant: applying pending to
// dur, in order, gives data.
type file struct {
	id      uint64
	perm    uint32
	mtime   time.Time
	data    []byte   // what readers see
	dur     []byte   // what is on disk
	pending []change // writes and truncates since the last fsync
}

// change is one unsynced write (data != nil) or truncate.
type change struct {
	off  int64
	data []byte
	size int64 // truncate: the new size
}

func (f *file) ino() uint64 { return f.id }

func (f *file) write(off int64, p []byte) {
	cp := slices.Clone(p)
	f.data = writeAt(f.data, off, cp)
	f.pending = append(f.pending, change{off: off, data: cp})
	f.mtime = time.Now()
}

func (f *file) truncate(size int64) {
	f.data = resize(f.data, size)
	f.pending = append(f.pending, change{size: size})
	f.mtime = time.Now()
}

// sync is fsync: every pending change reaches the disk.
func (f *file) sync() {
	for _, c := range f.pending {
		f.dur = c.apply(f.dur)
	}
	f.pending = nil
}

// lose is the power cut for one file: with rng nil nothing pending
// survives; otherwise each sector of each pending write, and each pending
// truncate, survives with probability 1/2.
func (f *file) lose(rng *rand.Rand) {
	if rng != nil {
		for _, c := range f.pending {
			if c.data == nil {
				if rng.IntN(2) == 0 {
					f.dur = c.apply(f.dur)
				}
				continue
			}
			for off, p := range sectors(c.off, c.data) {
				if rng.IntN(2) == 0 {
					f.dur = writeAt(f.dur, off, p)
				}
			}
		}
	}
	f.pending = nil
	f.data = slices.Clone(f.dur)
}

func (c change) apply(b []byte) []byte {
	if c.data == nil {
		return resize(b, c.size)
	}
	return writeAt(b, c.off, c.data)
}

// sectors yields p split at sectorSize boundaries of the file offset.
func sectors(off int64, p []byte) func(yield func(int64, []byte) bool) {
	return func(yield func(int64, []byte) bool) {
		for len(p) > 0 {
			n := min(int64(len(p)), sectorSize-off%sectorSize)
			if !yield(off, p[:n]) {
				return
			}
			off, p = off+n, p[n:]
		}
	}
}

// writeAt writes p at off in b, growing b with zeros as needed.
func writeAt(b []byte, off int64, p []byte) []byte {
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[off:], p)
	return b
}

// resize cuts b to n bytes or grows it with zeros. Growing appends, so
// bytes left in the capacity by an earlier shrink never reappear.
func resize(b []byte, n int64) []byte {
	if n <= int64(len(b)) {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

// dir is a directory's two states: the entries readers see and the ones
// on disk. Only fsync of the directory itself copies cur to dur.
type dir struct {
	id    uint64
	perm  uint32
	mtime time.Time
	cur   map[string]node
	dur   map[string]node
}

func (d *dir) ino() uint64 { return d.id }

func (d *dir) sync() { d.dur = maps.Clone(d.cur) }

// set and remove change the visible entries.
func (d *dir) set(name string, n node) {
	d.cur[name] = n
	d.mtime = time.Now()
}

func (d *dir) remove(name string) {
	delete(d.cur, name)
	d.mtime = time.Now()
}

// lose is the power cut for one directory: with rng nil only the synced
// entries survive; otherwise all unsynced changes survive with
// probability 1/2, as if the directory's block were written or not.
func (d *dir) lose(rng *rand.Rand) {
	if rng != nil && rng.IntN(2) == 0 {
		d.sync()
	}
	d.cur = maps.Clone(d.dur)
}

// walk visits every node reachable from root through visible or durable
// entries, once each, in an order that depends only on the tree (so a
// seeded Reset is reproducible).
func walk(root *dir, visit func(node)) {
	seen := map[uint64]bool{root.id: true}
	queue := []node{root}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		visit(n)
		d, ok := n.(*dir)
		if !ok {
			continue
		}
		for _, m := range []map[string]node{d.cur, d.dur} {
			for _, name := range slices.Sorted(maps.Keys(m)) {
				if c := m[name]; !seen[c.ino()] {
					seen[c.ino()] = true
					queue = append(queue, c)
				}
			}
		}
	}
}
