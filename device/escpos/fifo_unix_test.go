//go:build linux || darwin

package escpos

import "syscall"

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
