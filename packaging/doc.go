// Package packaging holds no code: it is the .deb's recipe (nfpm.yaml), the
// hardened systemd unit, the production configuration and udev examples
// that `make release` packs, and the tests that check them (the unit with
// systemd-analyze; with -tags release, the built binaries and packages).
package packaging
