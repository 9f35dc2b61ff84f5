// Command posgate-demo runs a scripted sale against `posgate serve --dev
// --simulate` on loopback and prints each step: a webhook receiver is
// registered, a card payment runs on the simulated terminal, a fiscal
// invoice settles it and is printed on the simulated printer, and the
// receiver gets the signed events and verifies them. The daemon is ended
// by its pid. `make demo` runs it.
//
// Usage: posgate-demo [-bin ./bin/posgate]
package main
