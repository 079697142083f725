package marathonsim

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// faultState holds the injected faults. It has its own lock so that faults
// can be set while the state lock is busy.
type faultState struct {
	mu         sync.Mutex
	refuse     bool
	failCount  int
	failStatus int
	failPing   bool
	delay      time.Duration
}

// RESTFault makes the next Count REST requests fail.
type RESTFault struct {
	// Count is how many requests fail; 0 clears the fault.
	Count int `json:"n"`
	// Status is the HTTP status, default 503. A 5xx makes go-marathon mark
	// the member down until its /ping succeeds (docs/marathon-api.md §1.1).
	Status int `json:"status"`
	// IncludePing makes /ping fail too (and count) while the fault lasts.
	IncludePing bool `json:"ping"`
}

// Faults is the current fault configuration, as GET /_sim/state shows it.
type Faults struct {
	RefuseStreams bool   `json:"refuseStreams"`
	FailREST      int    `json:"failRest"`
	FailStatus    int    `json:"failStatus,omitempty"`
	FailPing      bool   `json:"failPing"`
	DelayMS       int64  `json:"delayMs"`
	DropEvents    int    `json:"dropEvents"`
	DroppedEvents uint64 `json:"droppedEvents"`
}

func (f *faultState) refusingStreams() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refuse
}

// failRequest consumes one injected failure, if any applies.
func (f *faultState) failRequest(ping bool) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCount <= 0 || (ping && !f.failPing) {
		return 0, false
	}
	f.failCount--
	return f.failStatus, true
}

// delayRequest waits the injected delay; it reports false when the request
// was cancelled meanwhile.
func (f *faultState) delayRequest(ctx context.Context) bool {
	f.mu.Lock()
	d := f.delay
	f.mu.Unlock()
	return poll.Sleep(ctx, d)
}

// DropStreams disconnects every event stream client; the listener stays up
// so that clients reconnect (go-marathon after 3 s, or Options.SSERetry).
// It returns the number of streams dropped.
func (s *Server) DropStreams() int {
	n := s.events.dropAll()
	s.log.Info("fault: dropped event streams", "streams", n)
	return n
}

// RefuseStreams makes new /v2/events requests get 503 while on is true.
func (s *Server) RefuseStreams(on bool) {
	s.faults.mu.Lock()
	s.faults.refuse = on
	s.faults.mu.Unlock()
	s.log.Info("fault: refuse streams", "on", on)
}

// FailREST makes the next f.Count REST requests (not /v2/events, not /_sim,
// /ping only with f.IncludePing) answer f.Status.
func (s *Server) FailREST(f RESTFault) {
	if f.Status == 0 {
		f.Status = http.StatusServiceUnavailable
	}
	s.faults.mu.Lock()
	s.faults.failCount, s.faults.failStatus, s.faults.failPing = f.Count, f.Status, f.IncludePing
	s.faults.mu.Unlock()
	s.log.Info("fault: fail REST", "count", f.Count, "status", f.Status, "ping", f.IncludePing)
}

// DropEvents makes the next k published events reach no client, like
// Marathon's slow-consumer drop.
func (s *Server) DropEvents(k int) {
	s.events.mu.Lock()
	s.events.dropNext = k
	s.events.mu.Unlock()
	s.log.Info("fault: drop events", "count", k)
}

// SetDelay delays every REST response (including /ping) by d; 0 clears it.
// A long delay plays a hung master; the wait ends if the client goes away.
func (s *Server) SetDelay(d time.Duration) {
	s.faults.mu.Lock()
	s.faults.delay = d
	s.faults.mu.Unlock()
	s.log.Info("fault: delay", "delay", d)
}

// SetTaskHealth makes a task pass (alive) or fail its health checks. A
// failing task fails one check now and then one per check interval (see
// Options.HealthCheckInterval), with Marathon's events, and is killed and
// replaced once a check fails with maxConsecutiveFailures failures already
// counted. Tasks of apps without health checks get one result anyway, and
// are never killed for it.
func (s *Server) SetTaskHealth(taskID string, alive bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.findTaskLocked(taskID)
	if t == nil {
		return fmt.Errorf("marathonsim: task %q does not exist", taskID)
	}
	s.setTaskHealthLocked(t, alive)
	return nil
}

// KillTask fails a task as a crash would: status_update_event TASK_FAILED
// with message, then a replacement after Options.RestartBackoff.
func (s *Server) KillTask(taskID, message string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.findTaskLocked(taskID)
	if t == nil {
		return fmt.Errorf("marathonsim: task %q does not exist", taskID)
	}
	if message == "" {
		message = "Command exited with status 137 (marathonsim kill)"
	}
	s.failLocked(t, message)
	return nil
}

func (s *Server) findTaskLocked(taskID string) *task {
	for _, list := range s.tasks {
		for _, t := range list {
			if t.ID == taskID {
				return t
			}
		}
	}
	return nil
}

// Faults returns the current fault configuration.
func (s *Server) Faults() Faults {
	s.faults.mu.Lock()
	f := Faults{
		RefuseStreams: s.faults.refuse, FailREST: s.faults.failCount, FailPing: s.faults.failPing,
		DelayMS: s.faults.delay.Milliseconds(),
	}
	if f.FailREST > 0 {
		f.FailStatus = s.faults.failStatus
	}
	s.faults.mu.Unlock()
	s.events.mu.Lock()
	f.DropEvents, f.DroppedEvents = s.events.dropNext, s.events.dropped
	s.events.mu.Unlock()
	return f
}

// clearFaults turns every fault off.
func (s *Server) clearFaults() {
	s.faults.mu.Lock()
	s.faults.refuse, s.faults.failCount, s.faults.failPing, s.faults.delay = false, 0, false, 0
	s.faults.mu.Unlock()
	s.events.mu.Lock()
	s.events.dropNext = 0
	s.events.mu.Unlock()
}
