//go:build linux

package powerfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// A slow disk served from a child process, for benchmarks.
//
// A FUSE server mounted with Mount runs on the goroutines of the process
// that uses the mount. Every read and write the benchmark's SQLite makes
// is a request that one of those goroutines must answer, and in one Go
// scheduler they wait for a P behind the benchmark's own work: with 16
// callers signing invoices on two cores, a commit's hundred WAL writes
// each waited for the scheduler, and a 5 ms fsync looked like 10–20 ms.
// A store box's disk driver is not scheduled by the daemon. MountChild
// therefore serves the filesystem from a child process, which the kernel
// schedules beside the benchmark as it would a disk's kernel threads.

// Environment of a child started by MountChild.
const (
	childMountEnv = "POWERFS_CHILD_MOUNT"
	childDelayEnv = "POWERFS_CHILD_FSYNC_DELAY"
)

// childReady is the line a child prints once its mount is up.
const childReady = "powerfs: mounted"

// ServeIfChild serves a mount when this process is a child MountChild
// started, and then exits; anywhere else it returns at once. A package
// whose tests or benchmarks use MountChild calls it first thing in its
// TestMain. The child mounts a fresh FS at the path in its environment,
// with the fsync delay given there, prints a line once the mount is up,
// and serves until its standard input closes (the parent unmounts, or
// ended), then unmounts and exits.
func ServeIfChild() {
	mnt := os.Getenv(childMountEnv)
	if mnt == "" {
		return
	}
	delay, err := time.ParseDuration(os.Getenv(childDelayEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "powerfs child: %s: %v\n", childDelayEnv, err)
		os.Exit(2)
	}
	fsys := New()
	fsys.SetFsyncDelay(delay)
	if err := fsys.Mount(mnt); err != nil {
		fmt.Fprintf(os.Stderr, "powerfs child: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(childReady)
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := fsys.Unmount(); err != nil {
		fmt.Fprintf(os.Stderr, "powerfs child: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childTimeout bounds a child's start and its unmount.
const childTimeout = 10 * time.Second

// MountChild mounts an empty FS at mountpoint, served by a child process
// (a copy of the running test binary, whose TestMain calls ServeIfChild),
// with every fsync delayed by fsyncDelay (see SetFsyncDelay). The FS
// lives only as long as the child: there is no power cut and no Reset
// here, only slow storage. It returns once the mount is up, and a
// function that unmounts: it closes the child's input, waits for it to
// unmount and exit, and past childTimeout kills it by pid and detaches
// the mount. Files under mountpoint must be closed before it is called.
func MountChild(mountpoint string, fsyncDelay time.Duration) (unmount func() error, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("powerfs: find the test binary: %w", err)
	}
	cmd := exec.Command(exe, "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), childMountEnv+"="+mountpoint, childDelayEnv+"="+fsyncDelay.String())
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("powerfs: start the child: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("powerfs: start the child: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("powerfs: start the child: %w", err)
	}
	exited := make(chan error, 1)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		up := false
		for sc.Scan() {
			if !up && sc.Text() == childReady {
				up = true
				ready <- true
			}
		}
		if !up {
			ready <- false
		}
		exited <- cmd.Wait()
	}()
	kill := func() error {
		_ = cmd.Process.Kill()
		var err error
		select {
		case err = <-exited:
		case <-time.After(childTimeout):
			err = fmt.Errorf("powerfs: child %d did not end after SIGKILL", cmd.Process.Pid)
		}
		// A killed server leaves its mount behind, not connected.
		if derr := syscall.Unmount(mountpoint, syscall.MNT_DETACH); derr != nil && !errors.Is(derr, syscall.EINVAL) {
			err = errors.Join(err, fmt.Errorf("powerfs: detach %s: %w", mountpoint, derr))
		}
		return err
	}
	select {
	case ok := <-ready:
		if !ok {
			err := <-exited
			return nil, fmt.Errorf("powerfs: the child did not mount %s: %v", mountpoint, err)
		}
	case <-time.After(childTimeout):
		return nil, errors.Join(fmt.Errorf("powerfs: the child did not mount %s within %v", mountpoint, childTimeout), kill())
	}
	return func() error {
		in.Close()
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("powerfs: the child serving %s: %w", mountpoint, err)
			}
			return nil
		case <-time.After(childTimeout):
			return errors.Join(fmt.Errorf("powerfs: the child serving %s did not unmount within %v", mountpoint, childTimeout), kill())
		}
	}, nil
}
