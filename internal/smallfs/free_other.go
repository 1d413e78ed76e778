//go:build !unix

package smallfs

import "errors"

func freeBytes(string) (int64, error) {
	return 0, errors.New("free space is only measured on unix")
}
