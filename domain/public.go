package domain

import "errors"

// publicError marks an error whose whole message Troupe wrote for any
// reader.
type publicError struct{ err error }

func (e *publicError) Error() string { return e.err.Error() }
func (e *publicError) Unwrap() error { return e.err }

// Public marks err as safe to show to any client: its whole message was
// written by Troupe and names no host, address, path, user or other detail
// of the infrastructure, such as "disk full (1048576 bytes free)". The HTTP
// API shows only such messages, and the names of the error kinds above, in
// its answers and on /health; everything else goes to the server's log.
// Mark an error only when nothing it wraps is a driver's or the operating
// system's text. errors.Is and errors.As see through the mark. Public(nil)
// is nil.
func Public(err error) error {
	if err == nil {
		return nil
	}
	return &publicError{err: err}
}

// PublicMessage returns the message of the outermost error in err's chain
// that was marked with Public, and whether there is one.
func PublicMessage(err error) (string, bool) {
	var p *publicError
	if !errors.As(err, &p) {
		return "", false
	}
	return p.Error(), true
}
