//go:build linux

package powerfs

import (
	"context"
	"maps"
	"slices"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// The go-fuse nodes are thin views of the model: every answer comes from
// the model under fsys.mu, so a fresh mount after Reset shows the new
// state. Each mount gets new nodes; the model outlives them.

type dirNode struct {
	fs.Inode
	fsys *FS
	d    *dir
}

type fileNode struct {
	fs.Inode
	fsys *FS
	f    *file
}

var (
	_ fs.NodeLookuper  = (*dirNode)(nil)
	_ fs.NodeGetattrer = (*dirNode)(nil)
	_ fs.NodeSetattrer = (*dirNode)(nil)
	_ fs.NodeReaddirer = (*dirNode)(nil)
	_ fs.NodeCreater   = (*dirNode)(nil)
	_ fs.NodeMkdirer   = (*dirNode)(nil)
	_ fs.NodeUnlinker  = (*dirNode)(nil)
	_ fs.NodeRmdirer   = (*dirNode)(nil)
	_ fs.NodeRenamer   = (*dirNode)(nil)
	_ fs.NodeLinker    = (*dirNode)(nil)
	_ fs.NodeFsyncer   = (*dirNode)(nil) // FSYNCDIR falls back to it
	_ fs.NodeStatfser  = (*dirNode)(nil)

	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
	_ fs.NodeReader    = (*fileNode)(nil)
	_ fs.NodeWriter    = (*fileNode)(nil)
	_ fs.NodeFsyncer   = (*fileNode)(nil)
	_ fs.NodeFlusher   = (*fileNode)(nil)
	_ fs.NodeAllocater = (*fileNode)(nil)
)

// inode returns the go-fuse inode for model node c, found from parent;
// caller must hold mu. go-fuse keeps one inode per Ino, so a file reached
// through two links is one inode.
func (fsys *FS) inode(ctx context.Context, parent *fs.Inode, c node) *fs.Inode {
	switch c := c.(type) {
	case *dir:
		return parent.NewInode(ctx, &dirNode{fsys: fsys, d: c}, fs.StableAttr{Mode: syscall.S_IFDIR, Ino: c.id})
	case *file:
		return parent.NewInode(ctx, &fileNode{fsys: fsys, f: c}, fs.StableAttr{Mode: syscall.S_IFREG, Ino: c.id})
	}
	panic("powerfs: unknown node type")
}

// attr fills out from model node c; caller must hold mu.
func attr(c node, out *fuse.Attr) {
	switch c := c.(type) {
	case *dir:
		out.Mode = syscall.S_IFDIR | c.perm
		out.Nlink = 2
		out.Size = 4096
		out.SetTimes(nil, &c.mtime, &c.mtime)
	case *file:
		out.Mode = syscall.S_IFREG | c.perm
		out.Nlink = 1
		out.Size = uint64(len(c.data))
		out.SetTimes(nil, &c.mtime, &c.mtime)
	}
	out.Ino = c.ino()
	out.Blksize = 4096
	out.Blocks = (out.Size + 511) / 512
}

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fsys.enter(false); e != 0 {
		return nil, e
	}
	defer n.fsys.mu.Unlock()
	c, ok := n.d.cur[name]
	if !ok {
		return nil, syscall.ENOENT
	}
	attr(c, &out.Attr)
	return n.fsys.inode(ctx, &n.Inode, c), 0
}

func (n *dirNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := n.fsys.enter(false); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	attr(n.d, &out.Attr)
	return 0
}

// Setattr changes the mode only; like timestamps, it is not modelled as
// durable or not.
func (n *dirNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if e := n.fsys.enter(false); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	if m, ok := in.GetMode(); ok {
		n.d.perm = m & 0o7777
	}
	attr(n.d, &out.Attr)
	return 0
}

func (n *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	if e := n.fsys.enter(false); e != 0 {
		return nil, e
	}
	defer n.fsys.mu.Unlock()
	var list []fuse.DirEntry
	for _, name := range slices.Sorted(maps.Keys(n.d.cur)) {
		c := n.d.cur[name]
		mode := uint32(syscall.S_IFREG)
		if _, ok := c.(*dir); ok {
			mode = syscall.S_IFDIR
		}
		list = append(list, fuse.DirEntry{Name: name, Mode: mode, Ino: c.ino()})
	}
	return fs.NewListDirStream(list), 0
}

func (n *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if e := n.fsys.enter(true); e != 0 {
		return nil, nil, 0, e
	}
	defer n.fsys.mu.Unlock()
	if _, ok := n.d.cur[name]; ok {
		// The kernel sends CREATE after a failed lookup; another
		// process won the race.
		return nil, nil, 0, syscall.EEXIST
	}
	f := n.fsys.newFile(mode)
	n.d.set(name, f)
	attr(f, &out.Attr)
	return n.fsys.inode(ctx, &n.Inode, f), nil, 0, 0
}

func (n *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fsys.enter(true); e != 0 {
		return nil, e
	}
	defer n.fsys.mu.Unlock()
	if _, ok := n.d.cur[name]; ok {
		return nil, syscall.EEXIST
	}
	d := n.fsys.newDir(mode)
	n.d.set(name, d)
	attr(d, &out.Attr)
	return n.fsys.inode(ctx, &n.Inode, d), 0
}

func (n *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if e := n.fsys.enter(true); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	switch n.d.cur[name].(type) {
	case nil:
		return syscall.ENOENT
	case *dir:
		return syscall.EISDIR
	}
	n.d.remove(name)
	return 0
}

func (n *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if e := n.fsys.enter(true); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	switch c := n.d.cur[name].(type) {
	case nil:
		return syscall.ENOENT
	case *file:
		return syscall.ENOTDIR
	case *dir:
		if len(c.cur) > 0 {
			return syscall.ENOTEMPTY
		}
	}
	n.d.remove(name)
	return 0
}

// renameNoreplace is RENAME_NOREPLACE from renameat2(2).
const renameNoreplace = 1

func (n *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if e := n.fsys.enter(true); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	np, ok := newParent.(*dirNode)
	if !ok {
		return syscall.EXDEV
	}
	if flags&^renameNoreplace != 0 {
		return syscall.EINVAL // RENAME_EXCHANGE and RENAME_WHITEOUT are not modelled
	}
	src, ok := n.d.cur[name]
	if !ok {
		return syscall.ENOENT
	}
	if dst, ok := np.d.cur[newName]; ok {
		if flags&renameNoreplace != 0 {
			return syscall.EEXIST
		}
		if dst == src {
			return 0
		}
		_, srcDir := src.(*dir)
		dd, dstDir := dst.(*dir)
		switch {
		case dstDir && !srcDir:
			return syscall.EISDIR
		case !dstDir && srcDir:
			return syscall.ENOTDIR
		case dstDir && len(dd.cur) > 0:
			return syscall.ENOTEMPTY
		}
	}
	n.d.remove(name)
	np.d.set(newName, src)
	return 0
}

func (n *dirNode) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if e := n.fsys.enter(true); e != 0 {
		return nil, e
	}
	defer n.fsys.mu.Unlock()
	t, ok := target.(*fileNode)
	if !ok {
		return nil, syscall.EPERM // no hard links to directories
	}
	if _, ok := n.d.cur[name]; ok {
		return nil, syscall.EEXIST
	}
	n.d.set(name, t.f)
	attr(t.f, &out.Attr)
	return n.fsys.inode(ctx, &n.Inode, t.f), 0
}

// Fsync on a directory (FSYNCDIR) makes its entries durable. It must be
// implemented: a FUSE server answering ENOSYS makes the kernel report
// every later fsync as a success without asking.
func (n *dirNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	n.fsys.waitFsync() // SetFsyncDelay
	if e := n.fsys.enter(true); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	n.d.sync()
	return 0
}

// Statfs reports 4 GiB with half free, or the capacity and what is
// left of it (SetCapacity).
func (n *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize = 4096
	out.Frsize = 4096
	out.Blocks = 1 << 20
	out.Bfree = 1 << 19
	n.fsys.mu.Lock()
	if c := n.fsys.capacity; c > 0 {
		out.Blocks = uint64(c) / 4096
		out.Bfree = uint64(max(0, c-n.fsys.used())) / 4096
	}
	n.fsys.mu.Unlock()
	out.Bavail = out.Bfree
	out.Files = 1 << 20
	out.Ffree = 1 << 19
	out.NameLen = 255
	return 0
}

func (n *fileNode) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if e := n.fsys.enter(false); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	attr(n.f, &out.Attr)
	return 0
}

// Setattr truncates (a durable-or-not change like a write) and changes
// the mode (not modelled).
func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	size, truncate := in.GetSize()
	if e := n.fsys.enter(truncate); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	if truncate {
		if e := n.fsys.room(n.f, int64(size)); e != 0 {
			return e
		}
		n.f.truncate(int64(size))
	}
	if m, ok := in.GetMode(); ok {
		n.f.perm = m & 0o7777
	}
	attr(n.f, &out.Attr)
	return 0
}

// Open returns no handle: reads and writes go to the node. No
// FOPEN_DIRECT_IO, so the page cache (and shared mmap) works.
func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	truncate := flags&syscall.O_TRUNC != 0
	if e := n.fsys.enter(truncate); e != 0 {
		return nil, 0, e
	}
	defer n.fsys.mu.Unlock()
	if truncate && len(n.f.data) > 0 {
		n.f.truncate(0)
	}
	return nil, 0, 0
}

func (n *fileNode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if e := n.fsys.enter(false); e != 0 {
		return nil, e
	}
	defer n.fsys.mu.Unlock()
	if off >= int64(len(n.f.data)) {
		return fuse.ReadResultData(nil), 0
	}
	k := copy(dest, n.f.data[off:])
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *fileNode) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if e := n.fsys.enter(true); e != 0 {
		return 0, e
	}
	defer n.fsys.mu.Unlock()
	if e := n.fsys.room(n.f, off+int64(len(data))); e != 0 {
		return 0, e
	}
	n.f.write(off, data)
	return uint32(len(data)), 0
}

// Fsync makes the file's content durable (fsync and fdatasync alike).
func (n *fileNode) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	n.fsys.waitFsync() // SetFsyncDelay
	if e := n.fsys.enter(true); e != 0 {
		return e
	}
	defer n.fsys.mu.Unlock()
	n.fsys.fsyncs++
	if n.fsys.fsyncs == n.fsys.failAt {
		n.f.pending = nil // see FailFsync
		return syscall.EIO
	}
	n.f.sync()
	return 0
}

// Flush is close(2); after the cut it reports the EIO.
func (n *fileNode) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno {
	if e := n.fsys.enter(false); e != 0 {
		return e
	}
	n.fsys.mu.Unlock()
	return 0
}

// Allocate is not modelled; callers fall back to writing.
func (n *fileNode) Allocate(ctx context.Context, fh fs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}
