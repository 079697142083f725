package watcher

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	marathon "github.com/gambol99/go-marathon"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oakdns/oak/internal/poll"
)

// maxEventBytes bounds one event. Deployment events carry the whole root
// group before and after, megabytes on a large cluster; an event past the
// bound ends the connection, and the reconnect's full resync covers it.
const maxEventBytes = 64 << 20

// The event stream is our own SSE client rather than go-marathon's: v0.7.1
// never closes its stream (a goroutine and a connection left behind by
// every client), delivers each event on a goroutine of its own (out of
// order), hides disconnects, and stays on the master it first reached.
// This one is a single goroutine per stream, ended with its context; it
// sends what go-marathon sends (GET <member>/v2/events, basic auth or the
// DC/OS token, Accept: text/event-stream) plus ?event_type= and, with a
// token, the /marathon prefix go-marathon forgets. Status updates, nearly
// every event under churn, are decoded into a lean type of their own
// (statusUpdate); the others into go-marathon's event types, as
// go-marathon decodes them.

// runStream follows the event stream until ctx is done, reconnecting with
// backoff. It stays with the master it connected to; while it has no
// master yet, or the stream has been down for StreamFailover, every
// attempt tries the next master, so that it moves to one that answers.
func (w *Watcher) runStream(ctx context.Context, client *http.Client) {
	member := 0
	pinned := false
	mapper := newEventMapper()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if !poll.Sleep(ctx, poll.Backoff(attempt, w.cfg.RetryMin, w.cfg.RetryMax)) {
				return
			}
			if len(w.cfg.Endpoints) > 1 && (!pinned || w.status.streamDownFor(time.Now()) >= w.cfg.StreamFailover) {
				member = (member + 1) % len(w.cfg.Endpoints)
			}
		}
		connected, err := w.readStream(ctx, client, w.endpoints[member], mapper)
		if ctx.Err() != nil {
			return
		}
		if connected {
			pinned = true
			attempt = 0
		}
		// A drop and the first failed connect are news; the retries
		// after them are not.
		w.streamDown(err, connected || attempt == 0)
	}
}

// readStream connects to member's event stream and applies its events
// until it ends; connected says whether it was answered with 200.
func (w *Watcher) readStream(parent context.Context, client *http.Client, member string, mapper *eventMapper) (connected bool, err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.streamURL(member), nil)
	if err != nil {
		return false, err
	}
	if w.cfg.User != "" && w.cfg.Password != "" {
		req.SetBasicAuth(w.cfg.User, w.cfg.Password)
	}
	if w.cfg.Token != "" {
		req.Header.Set("Authorization", "token="+w.cfg.Token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("event stream: HTTP %s", resp.Status)
	}
	w.streamUp()
	// A master that died without closing the connection (a host gone, a
	// partition) sends nothing, not even heartbeats: after StreamIdle the
	// stream is ended, and the reconnect's full resync covers the gap.
	idle := time.AfterFunc(w.cfg.StreamIdle, func() { cancel(errStreamIdle) })
	defer idle.Stop()
	events := newSSEReader(&idleReader{r: resp.Body, timer: idle, idle: w.cfg.StreamIdle})
	for {
		name, data, err := events.next()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // Marathon never ends a stream on purpose
			}
			if cause := context.Cause(ctx); errors.Is(cause, errStreamIdle) {
				err = fmt.Errorf("%w: nothing for %s", cause, w.cfg.StreamIdle)
			}
			return true, err
		}
		kind, err := eventKind(name, data)
		if err != nil {
			w.log.Debug("marathon event not decoded", "event", name, "err", err)
			continue
		}
		if kind == statusUpdateEvent {
			e, err := decodeStatusUpdate(data)
			if err != nil {
				w.log.Debug("marathon event not decoded", "event", kind, "err", err)
				continue
			}
			if u, ok := e.taskUpdate(); ok {
				w.pending.update(u)
			} else {
				w.pending.mark(oneApp(e.AppID))
			}
			continue
		}
		ev, err := decodeEvent(kind, data)
		if err != nil {
			w.log.Debug("marathon event not decoded", "event", kind, "err", err)
			continue
		}
		if ev == nil {
			continue // not one the watcher follows
		}
		w.pending.mark(mapper.dirty(ev))
	}
}

// errStreamIdle ends a stream that brought nothing for Config.StreamIdle.
var errStreamIdle = errors.New("event stream silent, not even a heartbeat; taken for dead")

// idleReader reads the stream's body and pushes its idle timer back
// whenever bytes arrive (events or heartbeats).
type idleReader struct {
	r     io.Reader
	timer *time.Timer
	idle  time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

// statusUpdateEvent is the event of a task's state change: under churn,
// nearly every event.
const statusUpdateEvent = "status_update_event"

// eventKind returns an event's Marathon name: its SSE event name, or else
// the JSON's eventType (go-marathon's own test server names every event
// "MarathonEvent").
func eventKind(name string, data []byte) (string, error) {
	if name == statusUpdateEvent {
		return name, nil
	}
	if _, err := marathon.GetEvent(name); err == nil {
		return name, nil
	}
	var kind marathon.EventType
	if err := jsonv1.Unmarshal(data, &kind); err != nil {
		return "", fmt.Errorf("event type: %w", err)
	}
	return kind.EventType, nil
}

// streamURL is member's /v2/events with the event types the watcher
// follows: Marathon then leaves out the others (instance_changed_event and
// the like, one for every status update in 1.4).
func (w *Watcher) streamURL(member string) string {
	path := "/v2/events"
	if w.cfg.Token != "" {
		path = "/marathon/v2/events" // DC/OS serves Marathon under /marathon
	}
	return member + path + "?" + url.Values{"event_type": streamEventTypes}.Encode()
}

// decodeEvent decodes one event of a kind eventKind named into
// go-marathon's type for it. It returns nil for events outside
// eventFilter, without decoding their body.
func decodeEvent(kind string, data []byte) (*marathon.Event, error) {
	ev, err := marathon.GetEvent(kind)
	if err != nil {
		return nil, err
	}
	if ev.ID&eventFilter == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, ev.Event); err != nil {
		return nil, fmt.Errorf("%s: %w", ev.Name, err)
	}
	return ev, nil
}

// errEventTooLarge ends a stream whose event outgrows maxEventBytes.
var errEventTooLarge = fmt.Errorf("event stream: an event is larger than %d bytes", maxEventBytes)

// maxKeptData bounds the data buffer an sseReader keeps between events.
const maxKeptData = 64 << 10

// sseReader reads server-sent events (the WHATWG EventSource format):
// "event:" and "data:" fields, events ended by a blank line, comments and
// other fields (id, retry) skipped. Lines end with LF or CRLF, as Jetty
// writes them; a lone CR is not a line end here.
type sseReader struct {
	r     *bufio.Reader
	limit int
	line  []byte
	data  []byte // the last event's data, reused
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 64<<10), limit: maxEventBytes}
}

// next returns the next event's name ("" when it has none) and data (its
// data lines joined by "\n"), valid until the next call. An event with no
// data line is skipped, as EventSource does.
func (s *sseReader) next() (name string, data []byte, err error) {
	size := 0
	hasData := false
	data = s.data[:0]
	defer func() {
		if cap(data) <= maxKeptData {
			s.data = data[:0] // a deployment's megabytes are not kept
		}
	}()
	for {
		line, err := s.readLine(s.limit - size)
		if err != nil {
			return "", nil, err
		}
		size += len(line)
		if len(line) == 0 {
			if hasData {
				return name, data, nil
			}
			name, size = "", 0
			continue
		}
		field, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			value = nil
		}
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = eventName(value)
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data = append(data, value...)
			hasData = true
		}
	}
}

// eventName returns an SSE event name as a string, without allocating for
// the name of nearly every event.
func eventName(b []byte) string {
	if string(b) == statusUpdateEvent {
		return statusUpdateEvent
	}
	return string(b)
}

// readLine returns the next line without its end, failing past limit
// bytes. The line is valid until the next call.
func (s *sseReader) readLine(limit int) ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.line)+len(chunk) > limit+2 {
			return nil, errEventTooLarge
		}
		s.line = append(s.line, chunk...)
		switch {
		case err == nil:
			line := bytes.TrimSuffix(s.line[:len(s.line)-1], []byte("\r"))
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(s.line) > 0:
			return nil, io.ErrUnexpectedEOF // a line cut off
		default:
			return nil, err
		}
	}
}
