//go:build linux

package powerfs

import "sync"

// StallUnmount makes fsys's next Unmount block, before go-fuse's
// Server.Unmount is called, until release is called: a stuck unmount on
// demand, as a loaded machine produced one.
func StallUnmount(fsys *FS) (release func()) {
	ch := make(chan struct{})
	fsys.mu.Lock()
	fsys.unmountStall = ch
	fsys.mu.Unlock()
	return sync.OnceFunc(func() { close(ch) })
}
