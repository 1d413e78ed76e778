package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// rateMeter turns a growing count into a rate since its previous reading.
type rateMeter struct {
	last int64
	at   time.Time
}

// newRateMeter returns a meter whose first reading counts from now and 0.
func newRateMeter() *rateMeter { return &rateMeter{at: time.Now()} }

// rate returns the count's growth per second since the previous reading.
func (m *rateMeter) rate(count int64) float64 {
	now := time.Now()
	r := perSecond(count-m.last, now.Sub(m.at))
	m.at, m.last = now, count
	return r
}

// startProgress reports status() on w until the returned function is
// called (which is safe to call more than once): a line a second, or a
// one-line bar redrawn in place when w is a terminal. status returns the
// text and the fraction done, 0 to 1.
func startProgress(w io.Writer, status func() (text string, fraction float64)) (stop func()) {
	tty := isTerminal(w)
	every := progressEvery
	if tty {
		every = progressEveryOnTTY
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-ticker.C:
				text, fraction := status()
				if tty {
					fmt.Fprintf(w, "\r%s %s\x1b[K", progressBar(fraction), text)
				} else {
					fmt.Fprintln(w, text)
				}
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// progressBar draws fraction (clamped to 0..1) as a bar with a percentage.
func progressBar(fraction float64) string {
	fraction = min(max(fraction, 0), 1)
	filled := int(fraction * progressBarWidth)
	return fmt.Sprintf("[%s%s] %3.0f%%", strings.Repeat("#", filled), strings.Repeat(".", progressBarWidth-filled), fraction*100)
}

// isTerminal reports whether w is a terminal (a character device), where
// a progress bar can be redrawn in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
