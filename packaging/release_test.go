//go:build release

package packaging_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Run by `make release` after it builds: each binary is an ELF for its
// architecture, and each .deb holds the binary, the unit, the config (as a
// conffile) and the udev examples.
func TestReleaseArtifacts(t *testing.T) {
	for arch, machine := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		t.Run(arch, func(t *testing.T) {
			bin := filepath.Join("..", "bin", "linux-"+arch, "posgate")
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatalf("%s: %v", bin, err)
			}
			defer f.Close()
			if f.Machine != machine || f.Class != elf.ELFCLASS64 {
				t.Fatalf("%s is %v %v, want %v 64-bit", bin, f.Machine, f.Class, machine)
			}
			debs, _ := filepath.Glob(filepath.Join("..", "bin", "posgate_*_"+arch+".deb"))
			if len(debs) != 1 {
				t.Fatalf("want one posgate_*_%s.deb in bin/, found %v", arch, debs)
			}
			members := readAr(t, debs[0])
			data := tarNames(t, members, "data.tar.gz")
			for _, want := range []string{"./usr/bin/posgate", "./lib/systemd/system/posgate.service", "./etc/posgate/posgate.toml", "./usr/share/doc/posgate/examples/99-posgate.rules"} {
				if !data[want] {
					t.Errorf("%s lacks %s", debs[0], want)
				}
			}
			ctrl := tarFiles(t, members, "control.tar.gz")
			if !strings.Contains(ctrl["./conffiles"], "/etc/posgate/posgate.toml") {
				t.Errorf("the config is not a conffile: %q", ctrl["./conffiles"])
			}
			if !strings.Contains(ctrl["./control"], "Architecture: "+arch) {
				t.Errorf("control: %q", ctrl["./control"])
			}
		})
	}
}

// readAr returns the members of a Debian ar archive.
func readAr(t *testing.T, path string) map[string][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("!<arch>\n")) {
		t.Fatalf("%s is not an ar archive", path)
	}
	out := map[string][]byte{}
	for b := raw[8:]; len(b) >= 60; {
		name := strings.TrimRight(strings.TrimSpace(string(b[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(b[48:58])))
		if err != nil || 60+size > len(b) {
			t.Fatalf("%s: bad ar header for %q", path, name)
		}
		out[name] = b[60 : 60+size]
		b = b[60+size+size%2:]
	}
	return out
}

func tarEach(t *testing.T, members map[string][]byte, name string, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	raw, ok := members[name]
	if !ok {
		t.Fatalf("no %s in the package (members %v)", name, keys(members))
	}
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(h, tr)
	}
}

func tarNames(t *testing.T, members map[string][]byte, name string) map[string]bool {
	names := map[string]bool{}
	tarEach(t, members, name, func(h *tar.Header, _ io.Reader) { names["./"+strings.TrimPrefix(h.Name, "./")] = true })
	return names
}

func tarFiles(t *testing.T, members map[string][]byte, name string) map[string]string {
	files := map[string]string{}
	tarEach(t, members, name, func(h *tar.Header, r io.Reader) {
		b, _ := io.ReadAll(r)
		files["./"+strings.TrimPrefix(h.Name, "./")] = string(b)
	})
	return files
}

func keys(m map[string][]byte) string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	return fmt.Sprint(s)
}
