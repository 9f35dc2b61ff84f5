package masterkey_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posgate/posgate/masterkey"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	k1, err := masterkey.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != masterkey.Size {
		t.Fatalf("key file mode %v size %d, want 0600 and %d", fi.Mode().Perm(), fi.Size(), masterkey.Size)
	}
	sealed := k1.Seal([]byte("sk_secret"), []byte("key_1"))
	if bytes.Contains(sealed, []byte("sk_secret")) {
		t.Fatal("sealed value contains the plaintext")
	}

	// A restart loads the same key, which opens what the first sealed.
	k2, err := masterkey.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k2.Open(sealed, []byte("key_1"))
	if err != nil || string(got) != "sk_secret" {
		t.Fatalf("Open=%q, %v", got, err)
	}

	t.Run("ErrOpenOtherAAD", func(t *testing.T) {
		if _, err := k2.Open(sealed, []byte("key_2")); !errors.Is(err, masterkey.ErrOpen) {
			t.Fatalf("err=%v, want ErrOpen", err)
		}
	})
	t.Run("ErrOpenTampered", func(t *testing.T) {
		bad := bytes.Clone(sealed)
		bad[len(bad)-1] ^= 1
		if _, err := k2.Open(bad, []byte("key_1")); !errors.Is(err, masterkey.ErrOpen) {
			t.Fatalf("err=%v, want ErrOpen", err)
		}
		if _, err := k2.Open(bad[:5], []byte("key_1")); !errors.Is(err, masterkey.ErrOpen) {
			t.Fatalf("short: err=%v, want ErrOpen", err)
		}
	})
	t.Run("ErrOtherKey", func(t *testing.T) {
		other, err := masterkey.LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.Open(sealed, []byte("key_1")); !errors.Is(err, masterkey.ErrOpen) {
			t.Fatalf("err=%v, want ErrOpen", err)
		}
	})
}

func TestLoadRefusesLoosePermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(path, make([]byte, masterkey.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := masterkey.LoadOrCreate(path); err == nil {
		t.Fatal("a world-readable key file was accepted")
	}
}
