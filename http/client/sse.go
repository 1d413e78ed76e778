package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"iter"
)

// maxEventBytes bounds one line of an event stream: a job with a 1 MiB
// payload and a 64 KiB result fits.
const maxEventBytes = 4 << 20

// readEvents parses a text/event-stream body into its events; a read error
// is the last item (a stream that ends cleanly yields none).
func readEvents(r io.Reader) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxEventBytes)
		var (
			ev   Event
			data bytes.Buffer
			has  bool
		)
		for sc.Scan() {
			line := sc.Bytes()
			if len(line) == 0 {
				if has {
					ev.Data = bytes.Clone(data.Bytes())
					if ev.Name == "" {
						ev.Name = "message"
					}
					if !yield(ev, nil) {
						return
					}
				}
				ev, has = Event{ID: ev.ID}, false
				data.Reset()
				continue
			}
			if line[0] == ':' {
				continue
			}
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				ev.Name = string(value)
			case "data":
				if has {
					data.WriteByte('\n')
				}
				data.Write(value)
				has = true
			case "id":
				ev.ID = string(value)
			}
		}
		if err := sc.Err(); err != nil {
			yield(Event{}, fmt.Errorf("client: read the event stream: %w", err))
		}
	}
}
