//go:build linux && cgo

package slowvfs

/*
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

// The parts of SQLite's public VFS interface this shim touches, declared
// from the documented API (https://sqlite.org/c3ref/vfs.html,
// https://sqlite.org/c3ref/io_methods.html). The functions are SQLite's,
// linked in by github.com/mattn/go-sqlite3.
typedef long long sqlite3_int64;
typedef struct sqlite3_file sqlite3_file;
typedef struct sqlite3_vfs sqlite3_vfs;
typedef void (*fnptr)(void);

typedef struct sqlite3_io_methods {
	int iVersion;
	int (*xClose)(sqlite3_file*);
	int (*xRead)(sqlite3_file*, void*, int, sqlite3_int64);
	int (*xWrite)(sqlite3_file*, const void*, int, sqlite3_int64);
	int (*xTruncate)(sqlite3_file*, sqlite3_int64);
	int (*xSync)(sqlite3_file*, int);
	fnptr rest[13]; // xFileSize … xUnfetch (iVersion 3): copied, not called
} sqlite3_io_methods;

struct sqlite3_file {
	const sqlite3_io_methods *pMethods;
};

struct sqlite3_vfs {
	int iVersion;
	int szOsFile;
	int mxPathname;
	sqlite3_vfs *pNext;
	const char *zName;
	void *pAppData;
	int (*xOpen)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*);
	fnptr rest[15]; // xDelete … xNextSystemCall (iVersion 3): copied
};

extern sqlite3_vfs *sqlite3_vfs_find(const char*);
extern int sqlite3_vfs_register(sqlite3_vfs*, int);

#define SLOW_MAX_METHODS 8

static sqlite3_vfs slow_vfs;
static int (*base_open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*);
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static const sqlite3_io_methods *base_methods[SLOW_MAX_METHODS];
static sqlite3_io_methods slow_methods[SLOW_MAX_METHODS];
static int n_methods;
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int64_t delay_ns;
static volatile int64_t syncs;

// slow_sync is every file's xSync: one flush at a time, as a card's
// cache flushes, each taking delay_ns longer than the disk's own fsync.
static int slow_sync(sqlite3_file *f, int flags) {
	const sqlite3_io_methods *base = 0;
	for (int i = 0; i < SLOW_MAX_METHODS; i++) {
		if (f->pMethods == &slow_methods[i]) {
			base = base_methods[i];
			break;
		}
	}
	if (base == 0) {
		return 10; // SQLITE_IOERR: cannot happen
	}
	pthread_mutex_lock(&flush_mu);
	int64_t d = delay_ns;
	if (d > 0) {
		struct timespec ts = { d / 1000000000, d % 1000000000 };
		while (nanosleep(&ts, &ts) != 0) {
		}
	}
	int rc = base->xSync(f, flags);
	__atomic_add_fetch(&syncs, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&flush_mu);
	return rc;
}

// slow_open opens through the base VFS and gives the file the same
// methods with xSync replaced.
static int slow_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out) {
	int rc = base_open(vfs, name, f, flags, out);
	if (rc != 0 || f->pMethods == 0) {
		return rc;
	}
	pthread_mutex_lock(&table_mu);
	int found = -1;
	for (int i = 0; i < n_methods; i++) {
		if (base_methods[i] == f->pMethods) {
			found = i;
			break;
		}
	}
	if (found < 0 && n_methods < SLOW_MAX_METHODS) {
		found = n_methods++;
		base_methods[found] = f->pMethods;
		slow_methods[found] = *f->pMethods;
		slow_methods[found].xSync = slow_sync;
	}
	pthread_mutex_unlock(&table_mu);
	if (found < 0) {
		return rc; // more kinds of file than expected: left fast
	}
	f->pMethods = &slow_methods[found];
	return rc;
}

// slow_register registers a copy of the default VFS under name, whose
// files sync slowly. The copy keeps the default VFS's own data, so every
// other method behaves exactly as the default's.
static int slow_register(const char *name) {
	sqlite3_vfs *base = sqlite3_vfs_find(0);
	if (base == 0) {
		return 1;
	}
	slow_vfs = *base;
	slow_vfs.pNext = 0;
	slow_vfs.zName = name;
	base_open = base->xOpen;
	slow_vfs.xOpen = slow_open;
	return sqlite3_vfs_register(&slow_vfs, 0);
}

static void slow_set_delay(int64_t ns) { delay_ns = ns; }
static int64_t slow_syncs(void) { return __atomic_load_n(&syncs, __ATOMIC_RELAXED); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the SQLite this wraps
)

// Name is the VFS to name in a connection string (vfs=…) once Register
// has run.
const Name = "posgate-slowsync"

var (
	once   sync.Once
	regErr error
	cname  = C.CString(Name) // lives as long as the registration
)

// Register adds the slow VFS to SQLite (once per process) and sets the
// delay every later sync of its files takes; 0 makes it as fast as the
// default VFS. Connections opened with vfs=Name use it.
func Register(delay time.Duration) error {
	once.Do(func() {
		if rc := C.slow_register(cname); rc != 0 {
			regErr = fmt.Errorf("slowvfs: register the VFS: SQLite error %d", int(rc))
		}
	})
	if regErr != nil {
		return regErr
	}
	C.slow_set_delay(C.int64_t(delay.Nanoseconds()))
	return nil
}

// Syncs counts the syncs of files opened through the VFS so far.
func Syncs() int64 { return int64(C.slow_syncs()) }

// BenchDelayEnv names the environment variable that sets the slow-disk
// benchmarks' fsync delay (a Go duration: 1ms, 5ms, 20ms); 5 ms when
// unset.
const BenchDelayEnv = "POSGATE_BENCH_FSYNC"

// BenchDelay is the fsync delay the slow-disk benchmarks use: 5 ms, or
// what BenchDelayEnv says.
func BenchDelay() (time.Duration, error) {
	s := os.Getenv(BenchDelayEnv)
	if s == "" {
		return 5 * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("slowvfs: %s=%q: want a duration such as 5ms", BenchDelayEnv, s)
	}
	return d, nil
}
