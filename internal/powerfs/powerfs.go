//go:build linux

package powerfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

var (
	// ErrMounted is returned by Mount and Reset while the FS is mounted.
	ErrMounted = errors.New("powerfs: mounted")
	// ErrNotMounted is returned by Unmount when the FS is not mounted.
	ErrNotMounted = errors.New("powerfs: not mounted")
	// ErrUnmountStuck is wrapped by Unmount's error when unmounting did
	// not finish within the unmount timeout.
	ErrUnmountStuck = errors.New("unmount stuck")
)

// FS is the modelled disk. It survives Unmount and Mount, as a disk
// survives a reboot. All methods are safe for concurrent use.
type FS struct {
	mu      sync.Mutex
	root    *dir
	nextIno uint64
	ops     int64  // mutating operations since Mount
	cutAt   int64  // the op that cuts the power; 0: not armed
	onCut   func() // called once, at the cut
	cut     bool   // the power is off: every operation fails with EIO
	fsyncs  int64  // file fsyncs since Mount
	failAt  int64  // the file fsync that fails; 0: none
	server  *fuse.Server
	mnt     string
	conn    string // the FUSE connection's number under fusectl

	capacity       int64         // bytes of file data the disk holds; 0: no limit
	unmountTimeout time.Duration // 0: DefaultUnmountTimeout
	unmountStall   chan struct{} // a test hook: the next Unmount blocks until closed

	slow slowSync // see SetFsyncDelay
}

// New returns an empty, unmounted FS whose root directory is durable.
func New() *FS {
	root := &dir{id: 1, perm: 0o755, mtime: time.Now(), cur: map[string]node{}, dur: map[string]node{}}
	return &FS{root: root, nextIno: 2}
}

// Mount serves the FS at mountpoint, calling mount(2) directly (root
// only, no fusermount). The kernel caches no entries or attributes, and
// files are not direct-io, so SQLite's shared mmap of -shm works.
func (fsys *FS) Mount(mountpoint string) error {
	fsys.mu.Lock()
	if fsys.server != nil {
		fsys.mu.Unlock()
		return ErrMounted
	}
	fsys.mu.Unlock()

	zero := time.Duration(0)
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true,
			FsName:            "powerfs",
			Name:              "powerfs",
			DisableXAttrs:     true,
			// Locks stay kernel-local (EnableLocks false): SQLite's
			// fcntl locks between the daemon and a CLI work as on disk.
		},
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		UID:             uint32(syscall.Getuid()),
		GID:             uint32(syscall.Getgid()),
	}
	server, err := fs.Mount(mountpoint, &dirNode{fsys: fsys, d: fsys.root}, opts)
	if err != nil {
		return fmt.Errorf("powerfs: mount %s: %w", mountpoint, err)
	}
	// The connection's number, for an abort even once the mount is gone.
	conn, err := connOf(mountpoint)
	if err != nil {
		_ = server.Unmount()
		return fmt.Errorf("powerfs: mount %s: %w", mountpoint, err)
	}
	fsys.mu.Lock()
	fsys.server, fsys.mnt, fsys.conn, fsys.ops, fsys.fsyncs = server, mountpoint, conn, 0, 0
	fsys.mu.Unlock()
	mounted.Store(fsys, struct{}{})
	return nil
}

// DefaultUnmountTimeout bounds Unmount; see SetUnmountTimeout.
const DefaultUnmountTimeout = 5 * time.Second

// SetUnmountTimeout sets how long Unmount may take before it aborts the
// FUSE connection; d ≤ 0 restores DefaultUnmountTimeout.
func (fsys *FS) SetUnmountTimeout(d time.Duration) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.unmountTimeout = d
}

// Unmount unmounts the FS, retrying while the mount is busy (a killed
// process's files are closed a moment after it is reaped). It never takes
// much longer than the unmount timeout (DefaultUnmountTimeout): go-fuse's
// Server.Unmount waits for the server's read loops, which block for good
// when the connection outlives the mount (seen on a loaded machine: the
// mount was gone and Unmount hung for minutes). Past the timeout, or if
// the mount stays busy, Unmount aborts the FUSE connection through
// fusectl (using the connection number recorded at Mount, which works
// even when the mount is already gone): every pending and later request
// fails at once and the read loops end. It then detaches the mount
// (MNT_DETACH, a lazy umount) and returns an error naming what happened.
// Unmounting also drops the kernel's page cache for the mount, which may
// hold lost data.
//
// A mount that is already gone (detached by someone else: umount says
// EINVAL) is not an error: Unmount waits for its connection to end,
// aborting it only while it is still this server's. The connection's
// number is aborted only while the server's loops run: once they have
// ended the connection is gone and the kernel may have given its number
// to another mount, of this process or another, which an abort by
// number would kill ("transport endpoint is not connected" there).
func (fsys *FS) Unmount() error {
	fsys.mu.Lock()
	server, mnt, conn, stall := fsys.server, fsys.mnt, fsys.conn, fsys.unmountStall
	timeout := fsys.unmountTimeout
	fsys.unmountStall = nil
	fsys.mu.Unlock()
	if server == nil {
		return ErrNotMounted
	}
	if timeout <= 0 {
		timeout = DefaultUnmountTimeout
	}
	// The loops end when the connection ends, however it ends.
	waited := make(chan struct{})
	go func() { server.Wait(); close(waited) }()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	unmounted := make(chan error, 1)
	var gaveUp atomic.Bool
	go func() {
		if stall != nil {
			<-stall // a test's stuck unmount
		}
		err := ErrUnmountStuck
		// server.Unmount itself retries for about 0.3 s; this makes it
		// about 2 s while the mount is busy. Once Unmount gave up, this
		// must not unmount: the path may be mounted again by then.
		for range 7 {
			if gaveUp.Load() {
				break
			}
			if err = server.Unmount(); !errors.Is(err, syscall.EBUSY) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		unmounted <- err
	}()
	var err error
	select {
	case err = <-unmounted:
	case <-deadline.C:
		gaveUp.Store(true)
		err = fmt.Errorf("%w after %v", ErrUnmountStuck, timeout)
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
		// Not mounted any more: someone detached it. Its connection
		// ends when its last file closes; past the timeout, end it.
		err = nil
		select {
		case <-waited:
		case <-deadline.C:
			if aerr := abortOwn(conn, waited); aerr != nil {
				err = fmt.Errorf("powerfs: %s was already unmounted; abort its connection: %w", mnt, aerr)
			}
		}
	}
	if err != nil {
		// Someone still holds a file open, or the server's loops hang.
		// Abort the connection, so nobody can block on this server any
		// more (a process closing a file at exit waits for an answer,
		// even this one), and detach.
		aerr := abortOwn(conn, waited)
		derr := syscall.Unmount(mnt, syscall.MNT_DETACH)
		if errors.Is(derr, syscall.EINVAL) {
			derr = nil // not mounted any more
		}
		if aerr != nil {
			// The server may still be needed: leave it running, and
			// the FS "mounted", so Reset refuses it.
			return fmt.Errorf("powerfs: unmount %s: %w (abort: %v, detach: %v)", mnt, err, aerr, derr)
		}
		err = fmt.Errorf("powerfs: unmount %s: %w (aborted the connection and detached, detach: %v)", mnt, err, derr)
	}
	// After an abort the loops end at once; bound the wait all the same.
	select {
	case <-waited:
	case <-time.After(timeout):
		err = errors.Join(err, fmt.Errorf("powerfs: %w: the server of %s did not stop within %v", ErrUnmountStuck, mnt, timeout))
	}
	fsys.mu.Lock()
	fsys.server, fsys.mnt, fsys.conn = nil, "", ""
	fsys.mu.Unlock()
	mounted.Delete(fsys)
	return err
}

// abortOwn aborts connection conn while it is the server's: while its
// loops (waited not yet closed) still read from it. A connection that
// ended on the way, its fusectl entry gone, needs no abort.
func abortOwn(conn string, waited <-chan struct{}) error {
	select {
	case <-waited:
		return nil // ended: the number may be another mount's now
	default:
	}
	err := abortConn(conn)
	if errors.Is(err, os.ErrNotExist) {
		return nil // ended between the check and the abort
	}
	return err
}

// mounted holds every FS this process has mounted and not unmounted,
// for DetachMounts.
var mounted sync.Map // *FS -> struct{}

// DetachMounts lazily detaches (MNT_DETACH) every FS this process has
// mounted and not unmounted: a test binary that gives up leaves none
// behind. Mounts of other processes are left alone, though they share
// the mount table (/proc/self/mountinfo lists them too).
func DetachMounts() {
	mounted.Range(func(k, _ any) bool {
		fsys := k.(*FS)
		fsys.mu.Lock()
		mnt := fsys.mnt
		fsys.mu.Unlock()
		if mnt != "" {
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		return true
	})
}

// ArmCut cuts the power at the k-th mutating operation from now (k ≥ 1):
// writes, truncates, fsyncs, creates, links, unlinks, renames, mkdirs and
// rmdirs count; reads and lookups do not. That operation and every later
// one fail with EIO. onCut, if not nil, runs once, synchronously in the
// operation that cuts, before it returns: kill the processes using the
// FS there. It must not use the FS itself.
func (fsys *FS) ArmCut(k int64, onCut func()) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.cutAt = fsys.ops + max(k, 1)
	fsys.onCut = onCut
}

// FailFsync makes the k-th file fsync from now (k ≥ 1) fail with EIO
// and forget the file's unsynced writes, as Linux does since 4.13 after a
// writeback error: the error is reported once, the dirty pages are marked
// clean, readers still see the data until the reboot, and a later fsync
// succeeds without writing it. Only a program that treats the first error
// as fatal keeps its promises.
func (fsys *FS) FailFsync(k int64) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.failAt = fsys.fsyncs + max(k, 1)
}

// Fsyncs returns the number of file fsyncs since Mount, to choose k for
// FailFsync from.
func (fsys *FS) Fsyncs() int64 {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.fsyncs
}

// SetCapacity makes the disk hold at most bytes of file data, counted as
// the sizes of the files readers see: a write or truncate that would
// grow the total past it fails with ENOSPC (and changes nothing), and
// statfs reports the space left. Raising it (or 0: no limit, the
// default) is the operator freeing space; nothing else changes, so a
// program that recovers by itself can be seen doing so.
func (fsys *FS) SetCapacity(bytes int64) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.capacity = max(bytes, 0)
}

// Used returns the bytes of file data readers see: what SetCapacity
// limits.
func (fsys *FS) Used() int64 {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.used()
}

// used sums the sizes of the visible files; caller holds mu.
func (fsys *FS) used() int64 {
	var n int64
	seen := map[uint64]bool{}
	var visit func(d *dir)
	visit = func(d *dir) {
		for _, c := range d.cur {
			if seen[c.ino()] {
				continue
			}
			seen[c.ino()] = true
			switch c := c.(type) {
			case *file:
				n += int64(len(c.data))
			case *dir:
				visit(c)
			}
		}
	}
	visit(fsys.root)
	return n
}

// room reports ENOSPC if f cannot grow to size bytes under the capacity;
// caller holds mu.
func (fsys *FS) room(f *file, size int64) syscall.Errno {
	if fsys.capacity == 0 || size <= int64(len(f.data)) {
		return 0
	}
	if fsys.used()+size-int64(len(f.data)) > fsys.capacity {
		return syscall.ENOSPC
	}
	return 0
}

// Cut cuts the power now. onCut set by ArmCut does not run.
func (fsys *FS) Cut() {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.cut = true
}

// IsCut reports whether the power has been cut.
func (fsys *FS) IsCut() bool {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.cut
}

// Ops returns the number of mutating operations since Mount. A run
// without a cut measures how many there are to choose a cut point from.
func (fsys *FS) Ops() int64 {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.ops
}

// Reset is the reboot after a power cut: what was not durable is lost
// as loss says (rng drives LossRandom and may be nil for LossDrop), the
// power is back on and nothing is armed. It also makes sense without a
// cut: it then models a power cut at the last operation. The FS must be
// unmounted.
func (fsys *FS) Reset(loss Loss, rng *rand.Rand) error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.server != nil {
		return ErrMounted
	}
	if loss == LossDrop {
		rng = nil
	} else if rng == nil {
		return errors.New("powerfs: LossRandom needs an rng")
	}
	// Directories first: which entries survive decides which files
	// remain, but every file that might is visited in a fixed order.
	var files []*file
	walk(fsys.root, func(n node) {
		switch n := n.(type) {
		case *dir:
			n.lose(rng)
		case *file:
			files = append(files, n)
		}
	})
	for _, f := range files {
		f.lose(rng)
	}
	fsys.cut, fsys.cutAt, fsys.onCut, fsys.failAt = false, 0, nil, 0
	return nil
}

// enter starts one operation under fsys.mu. It returns EIO, with mu
// unlocked, when the power is off or this mutating operation cuts it;
// otherwise it returns 0 with mu held, for the caller to unlock.
func (fsys *FS) enter(mutating bool) syscall.Errno {
	fsys.mu.Lock()
	if fsys.cut {
		fsys.mu.Unlock()
		return syscall.EIO
	}
	if !mutating {
		return 0
	}
	fsys.ops++
	if fsys.cutAt == 0 || fsys.ops < fsys.cutAt {
		return 0
	}
	fsys.cut = true
	onCut := fsys.onCut
	fsys.mu.Unlock()
	if onCut != nil {
		onCut()
	}
	return syscall.EIO
}

// newFile and newDir make nodes; caller must hold mu.
func (fsys *FS) newFile(perm uint32) *file {
	fsys.nextIno++
	return &file{id: fsys.nextIno, perm: perm & 0o7777, mtime: time.Now()}
}

func (fsys *FS) newDir(perm uint32) *dir {
	fsys.nextIno++
	return &dir{id: fsys.nextIno, perm: perm & 0o7777, mtime: time.Now(), cur: map[string]node{}, dur: map[string]node{}}
}

// Available reports why Mount cannot work here, or nil: it needs
// /dev/fuse and root (mount(2) is called directly).
func Available() error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("powerfs: no /dev/fuse: %w", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("powerfs: mounting needs root")
	}
	return nil
}

// Clone returns an unmounted copy of the FS, durable and unsynced state
// alike, with the power on and nothing armed. Tests set a disk up once and
// clone it per run, instead of repeating the setup.
func (fsys *FS) Clone() *FS {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	copies := map[uint64]node{}
	var cp func(n node) node
	cp = func(n node) node {
		if c, ok := copies[n.ino()]; ok {
			return c // a second link to the same file
		}
		switch n := n.(type) {
		case *file:
			c := &file{id: n.id, perm: n.perm, mtime: n.mtime, data: slices.Clone(n.data), dur: slices.Clone(n.dur)}
			for _, ch := range n.pending {
				c.pending = append(c.pending, change{off: ch.off, data: slices.Clone(ch.data), size: ch.size})
			}
			copies[n.id] = c
			return c
		case *dir:
			c := &dir{id: n.id, perm: n.perm, mtime: n.mtime, cur: map[string]node{}, dur: map[string]node{}}
			copies[n.id] = c
			for name, e := range n.cur {
				c.cur[name] = cp(e)
			}
			for name, e := range n.dur {
				c.dur[name] = cp(e)
			}
			return c
		}
		panic("powerfs: unknown node type")
	}
	return &FS{root: cp(fsys.root).(*dir), nextIno: fsys.nextIno}
}

// fuseCtl is where the fusectl filesystem lists FUSE connections.
const fuseCtl = "/sys/fs/fuse/connections"

// connOf returns the number of the FUSE connection mounted at mnt: the
// minor device number in /proc/self/mountinfo, which names its directory
// under fusectl.
func connOf(mnt string) (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	minor := ""
	for line := range strings.Lines(string(b)) {
		// 36 35 0:52 / /mnt rw,... - fuse.powerfs powerfs rw,...
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == mnt {
			_, minor, _ = strings.Cut(f[2], ":")
		}
	}
	if minor == "" {
		return "", fmt.Errorf("%s not in mountinfo", mnt)
	}
	return minor, nil
}

// abortConn ends FUSE connection conn through fusectl (mounting it if
// needed): every pending and later request fails at once, and the
// server's reads of /dev/fuse end.
func abortConn(conn string) error {
	if conn == "" {
		return errors.New("no connection number")
	}
	ctl := filepath.Join(fuseCtl, conn, "abort")
	if _, err := os.Stat(ctl); err != nil {
		if err := syscall.Mount("fusectl", fuseCtl, "fusectl", 0, ""); err != nil && !errors.Is(err, syscall.EBUSY) {
			return fmt.Errorf("mount fusectl: %w", err)
		}
		if _, err := os.Stat(ctl); err != nil {
			return fmt.Errorf("connection %s: %w", conn, err)
		}
	}
	return os.WriteFile(ctl, []byte("1"), 0o200)
}
