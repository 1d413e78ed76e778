//go:build !linux

package smallfs

import "errors"

var errNotLinux = errors.New("mounting a tmpfs needs Linux")

func mountTmpfs(string, int64) error { return errNotLinux }

func unmount(string) error { return errNotLinux }
