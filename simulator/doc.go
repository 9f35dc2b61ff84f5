// Package simulator serves device simulators on the two lines posgate
// drives: a pseudo-terminal (both ends in raw mode, behind an optional
// stable symlink that survives a simulated unplug) and TCP. It owns the
// serving only; the simulated devices live in subpackages (terminal for
// ZVT, printer for Datecs) and plug in as a Handler.
package simulator
