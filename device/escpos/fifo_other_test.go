//go:build !(linux || darwin)

package escpos

import "errors"

func mkfifo(string) error { return errors.New("no fifos here") }
