package marathonsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// broker fans events out to event stream clients. Publishing never blocks:
// each client has a bounded buffer, and a client whose buffer is full is
// disconnected (later Marathon versions drop slow consumers the same way).
type broker struct {
	buffer int

	mu       sync.Mutex
	clients  map[*client]struct{}
	dropNext int // fault: the next dropNext events reach nobody
	dropped  uint64
}

// client is one connected event stream.
type client struct {
	remote  string
	filter  map[string]bool // nil = every event type
	frames  chan []byte
	gone    chan struct{} // closed when the broker lets go of the client
	goneOne sync.Once
}

func newBroker(buffer int) *broker {
	return &broker{buffer: buffer, clients: map[*client]struct{}{}}
}

// frame formats one event as Marathon's servlet writes it: an event line, a
// data line and a blank line, with no id.
func frame(eventType string, data []byte) []byte {
	b := make([]byte, 0, len(eventType)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, eventType...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// publish sends an event to every client whose filter takes it.
func (b *broker) publish(eventType string, data []byte) {
	b.publishFrame(eventType, func() []byte { return frame(eventType, data) })
}

// publishFrame sends the frame render returns to every client whose filter
// takes eventType. render is called at most once, and not at all when no
// client takes the event, so an event nobody reads costs no encoding.
func (b *broker) publishFrame(eventType string, render func() []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.publishLocked(eventType, render)
}

func (b *broker) publishLocked(eventType string, render func() []byte) {
	if b.dropNext > 0 {
		b.dropNext--
		b.dropped++
		return
	}
	var f []byte
	for c := range b.clients {
		if c.filter != nil && !c.filter[eventType] {
			continue
		}
		if f == nil {
			f = render()
		}
		select {
		case c.frames <- f:
		default: // slow consumer
			b.removeLocked(c)
		}
	}
}

// attach registers c and publishes its event_stream_attached, which is
// therefore the first event c sees.
func (b *broker) attach(c *client, attached []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients[c] = struct{}{}
	b.publishLocked("event_stream_attached", func() []byte { return frame("event_stream_attached", attached) })
}

// detach unregisters c and tells the others.
func (b *broker) detach(c *client, detached []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removeLocked(c)
	b.publishLocked("event_stream_detached", func() []byte { return frame("event_stream_detached", detached) })
}

func (b *broker) removeLocked(c *client) {
	delete(b.clients, c)
	c.goneOne.Do(func() { close(c.gone) })
}

// dropAll disconnects every client and reports how many there were.
func (b *broker) dropAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.clients)
	for c := range b.clients {
		b.removeLocked(c)
	}
	return n
}

func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.clients)
}

// eventJSON adds eventType and timestamp to an event payload.
func eventJSON(eventType string, payload map[string]any) []byte {
	payload["eventType"] = eventType
	payload["timestamp"] = timestamp(time.Now())
	out, _ := json.Marshal(payload)
	return out
}

// emitLocked publishes an event. Called with s.mu held, so that events go
// out in the order of the state changes they describe. The payload is
// encoded only when some client takes the event; it must not be changed
// after the call.
func (s *Server) emitLocked(eventType string, payload map[string]any) {
	s.emitPlanLocked(eventType, payload, nil)
}

// emitPlanLocked publishes an event whose "plan" is an already rendered
// deployment plan (nil: none), which is spliced in as it is rather than
// re-encoded. s.mu must be held.
func (s *Server) emitPlanLocked(eventType string, payload map[string]any, plan json.RawMessage) {
	s.events.publishFrame(eventType, func() []byte {
		data := eventJSON(eventType, payload)
		if plan == nil {
			return frame(eventType, data)
		}
		f := make([]byte, 0, len(eventType)+len(data)+len(plan)+24)
		f = append(f, "event: "...)
		f = append(f, eventType...)
		f = append(f, "\ndata: "...)
		f = append(f, data[:len(data)-1]...) // without the closing brace
		f = append(f, `,"plan":`...)
		f = append(f, plan...)
		return append(f, "}\n\n"...)
	})
}

// statusUpdate is the payload of a status_update_event for t.
func statusUpdate(t *task, message string) map[string]any {
	ips := t.IPAddresses
	if ips == nil {
		ips = []ipAddress{}
	}
	ports := t.Ports
	if ports == nil {
		ports = []int{}
	}
	return map[string]any{
		"slaveId": t.SlaveID, "taskId": t.ID, "taskStatus": t.State, "message": message,
		"appId": t.AppID, "host": t.Host, "ipAddresses": ips, "ports": ports, "version": t.Version,
	}
}

// instanceChanged is the payload of a 1.4 instance_changed_event for t.
func instanceChanged(t *task, condition string) map[string]any {
	return map[string]any{
		"instanceId": instanceID(t.ID), "condition": condition, "runSpecId": t.AppID,
		"agentId": t.SlaveID, "host": t.Host, "runSpecVersion": t.Version,
	}
}

// acceptsEventStream reports whether an Accept value is text/event-stream.
func acceptsEventStream(r *http.Request) bool {
	for _, h := range r.Header.Values("Accept") {
		for _, v := range strings.Split(h, ",") {
			mediaType, _, _ := strings.Cut(v, ";")
			if strings.EqualFold(strings.TrimSpace(mediaType), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// serveEvents streams events as Marathon's /v2/events: headers flushed at
// once, event_stream_attached first, heartbeats, ?event_type= filters.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w)
		return
	}
	if !acceptsEventStream(r) {
		// Jetty's EventSourceServlet falls through to HttpServlet.doGet.
		writeMessage(w, http.StatusMethodNotAllowed, "HTTP method GET is not supported by this URL")
		return
	}
	if s.faults.refusingStreams() {
		writeMessage(w, http.StatusServiceUnavailable, "event streams refused (marathonsim refuse-streams)")
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeMessage(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeMessage(w, http.StatusServiceUnavailable, "simulator closed")
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	c := &client{remote: clientIP(r), frames: make(chan []byte, s.events.buffer), gone: make(chan struct{})}
	if types := r.URL.Query()["event_type"]; len(types) > 0 {
		c.filter = map[string]bool{}
		for _, t := range types {
			c.filter[t] = true
		}
	}
	// Attach before the headers go out: a client that has seen the 200 must
	// not miss events published right after.
	s.events.attach(c, eventJSON("event_stream_attached", map[string]any{"remoteAddress": c.remote}))
	defer s.events.detach(c, eventJSON("event_stream_detached", map[string]any{"remoteAddress": c.remote}))
	w.Header().Set("Content-Type", "text/event-stream;charset=UTF-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	s.log.Info("event stream attached", "remote", r.RemoteAddr, "filter", r.URL.Query()["event_type"])

	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	var heartbeat <-chan time.Time
	if s.opts.Heartbeat > 0 {
		t := time.NewTicker(s.opts.Heartbeat)
		defer t.Stop()
		heartbeat = t.C
	}
	retry := s.opts.SSERetry
	for {
		select {
		case f := <-c.frames:
			if retry > 0 {
				f = append([]byte(fmt.Sprintf("retry: %d\n", retry.Milliseconds())), f...)
				retry = 0
			}
			if !write(f) {
				return
			}
		case <-heartbeat:
			if !write([]byte("\n")) {
				return
			}
		case <-c.gone:
			s.log.Info("event stream dropped", "remote", r.RemoteAddr)
			return
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}
