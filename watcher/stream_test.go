package watcher

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	marathon "github.com/gambol99/go-marathon"
	jsonv1 "github.com/go-json-experiment/json/v1"
	"go.uber.org/goleak"

	"github.com/oakdns/oak/internal/poll"
)

type sseEvent struct{ name, data string }

// readAll reads every event of body until the reader fails.
func readAll(body io.Reader, limit int) ([]sseEvent, error) {
	r := newSSEReader(body)
	r.limit = limit
	var out []sseEvent
	for {
		name, data, err := r.next()
		if err != nil {
			return out, err
		}
		out = append(out, sseEvent{name, string(data)})
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name, body string
		want       []sseEvent
		err        error
	}{
		{"CRLF, as Jetty writes", "event: a\r\ndata: {}\r\n\r\n", []sseEvent{{"a", "{}"}}, io.EOF},
		{"LF", "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n", []sseEvent{{"a", "1"}, {"b", "2"}}, io.EOF},
		{"heartbeats and comments", "\r\n\r\n: hi\r\nevent: a\r\ndata: x\r\n\r\n\r\n", []sseEvent{{"a", "x"}}, io.EOF},
		{"data lines joined", "data: a\ndata:b\ndata\n\n", []sseEvent{{"", "a\nb\n"}}, io.EOF},
		{"no data: no event", "event: a\n\nid: 7\nretry: 50\nevent: b\ndata: 1\n\n", []sseEvent{{"b", "1"}}, io.EOF},
		{"event cut off", "event: a\ndata: 1\n", nil, io.EOF},
		{"line cut off", "event: a\ndata: 1", nil, io.ErrUnexpectedEOF},
		{"too large", "data: " + strings.Repeat("x", 100) + "\n\n", nil, errEventTooLarge},
		{"too large over lines", strings.Repeat("data: xxxxxxxxxxxxxxxxxxxx\n", 5) + "\n", nil, errEventTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tc.body), 64)
			if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.err) {
				t.Errorf("events %q, err %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzSSEReader: the reader never panics, never returns an event larger
// than its limit, and reads the same events whatever the chunks the body
// arrives in.
func FuzzSSEReader(f *testing.F) {
	f.Add("event: a\r\ndata: {}\r\n\r\n")
	f.Add("data: a\ndata:b\n\n: c\n\nevent\n")
	if recorded, err := os.ReadFile("../testdata/marathon/marathon-docs/events.txt"); err == nil {
		f.Add(string(recorded))
	}
	f.Fuzz(func(t *testing.T, body string) {
		const limit = 256
		whole, wholeErr := readAll(strings.NewReader(body), limit)
		bytewise, bytewiseErr := readAll(iotest.OneByteReader(strings.NewReader(body)), limit)
		if !reflect.DeepEqual(whole, bytewise) || !errors.Is(bytewiseErr, wholeErr) && !errors.Is(wholeErr, bytewiseErr) {
			t.Fatalf("whole: %q %v; byte by byte: %q %v", whole, wholeErr, bytewise, bytewiseErr)
		}
		for _, ev := range whole {
			if len(ev.data) > limit {
				t.Fatalf("event of %d bytes past the limit %d", len(ev.data), limit)
			}
		}
	})
}

// TestRecordedEventStream reads Marathon's own SSE capture and decodes
// each event as go-marathon does.
func TestRecordedEventStream(t *testing.T) {
	f, err := os.Open("../testdata/marathon/marathon-docs/events.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	events, err := readAll(f, maxEventBytes)
	if err != io.EOF {
		t.Fatalf("reading the capture: %v", err)
	}
	var names []string
	for _, raw := range events {
		names = append(names, raw.name)
		ev, err := decodeEvent(raw.name, []byte(raw.data))
		if err != nil {
			t.Fatalf("%s: %v", raw.name, err)
		}
		if want := event(t, raw.data); !reflect.DeepEqual(ev, want) {
			t.Errorf("%s decoded as %+v, go-marathon decodes %+v", raw.name, ev, want)
		}
	}
	if want := []string{"event_stream_attached", "status_update_event", "status_update_event"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("events %q, want %q", names, want)
	}
	ev, _ := decodeEvent(events[2].name, []byte(events[2].data))
	if u, ok := parseTaskUpdate(ev); !ok || u.app != "/test-app" || u.state != "TASK_RUNNING" || u.host != "srv4.hw.ca1.mesosphere.com" {
		t.Errorf("task update %+v, %v", u, ok)
	}
	for _, raw := range events[1:] {
		checkStatusUpdate(t, []byte(raw.data))
	}
}

// checkStatusUpdate fails when go-marathon decodes data as a status update
// and the lean decode does not give the same task update (or the same app
// to refetch when there is none).
func checkStatusUpdate(t *testing.T, data []byte) {
	t.Helper()
	if scanned, ok := scanStatusUpdate(data); ok {
		var full statusUpdate
		if err := jsonv1.Unmarshal(data, &full); err != nil {
			t.Fatalf("%q: the scan takes it, jsonv1 fails: %v", data, err)
		}
		if !reflect.DeepEqual(scanned, full) {
			t.Fatalf("%q: scanned %#v, jsonv1 %#v", data, scanned, full)
		}
	}
	ev, err := decodeEvent(statusUpdateEvent, data)
	if err != nil || ev == nil {
		return // go-marathon does not decode it: nothing to agree with
	}
	want, wantOK := parseTaskUpdate(ev)
	lean, err := decodeStatusUpdate(data)
	if err != nil {
		t.Fatalf("go-marathon decodes %q, the lean decode fails: %v", data, err)
	}
	got, gotOK := lean.taskUpdate()
	if gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: lean %+v %v, go-marathon %+v %v", data, got, gotOK, want, wantOK)
	}
	if wantApp := ev.Event.(*marathon.EventStatusUpdate).AppID; lean.AppID != wantApp {
		t.Fatalf("%q: lean app %q, go-marathon %q", data, lean.AppID, wantApp)
	}
}

// FuzzStatusUpdate: whatever go-marathon decodes as a status_update_event,
// the lean decode the stream uses decodes to the same task update.
func FuzzStatusUpdate(f *testing.F) {
	f.Add([]byte(statusEvent("/web", "web.1", "TASK_RUNNING", v1, "10.0.0.1")))
	f.Add([]byte(statusEvent("/web", "web.1", "TASK_KILLED", v1, "10.0.0.1")))
	f.Add([]byte(`{"appId":"/a","taskId":"t","taskStatus":"TASK_RUNNING","version":"v","host":"h","ports":[1,-1],"ipAddresses":[null]}`))
	f.Add([]byte(`{"APPID":"/a","taskid":"t","TaskStatus":"TASK_RUNNING","Version":"v","HOST":"h","ipaddresses":[{"IPADDRESS":"::1"}]}`))
	f.Add([]byte(`{"appId":"/a","appId":"/b","taskId":"t","taskStatus":"TASK_LOST","version":"v","timestamp":1}`))
	for _, tc := range statusScanCases {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStatusUpdate(t, data)
	})
}

func TestDecodeEvent(t *testing.T) {
	const attached = `{"remoteAddress":"10.0.0.9","eventType":"event_stream_attached","timestamp":"2017-02-18T19:12:00.102Z"}`
	tests := []struct {
		name, event, data string
		want              *marathon.Event
		wantErr           bool
	}{
		{"by the SSE name", "event_stream_attached", attached, event(t, attached), false},
		{"by the JSON's type (go-marathon's test server)", "MarathonEvent", attached, event(t, attached), false},
		{"not followed", "group_change_success", `{"eventType":"group_change_success","groupId":"/x"}`, nil, false},
		{"unknown type", "", `{"eventType":"no_such_event"}`, nil, true},
		{"not JSON", "status_update_event", `{"appId":`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got *marathon.Event
			kind, err := eventKind(tc.event, []byte(tc.data))
			if err == nil {
				got, err = decodeEvent(kind, []byte(tc.data))
			}
			if (err != nil) != tc.wantErr || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decodeEvent = %+v, %v; want %+v, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestStreamFailoversLeaveNothing: the event stream moves between two
// masters 20 times, each time because the one it follows dies; every
// failover is seen and the goroutine count ends where it began. Keep-alive
// is off on both masters, so idle REST connections do not count.
func TestStreamFailoversLeaveNothing(t *testing.T) {
	const failovers = 20
	opts := fastSim()
	opts.Apps = appsJSON(2, 1)
	masters := []*simServer{startSim(t, opts), startSim(t, opts)}
	for _, m := range masters {
		m.srv.Config.SetKeepAlivesEnabled(false)
	}
	w := newWatcher(t, []string{masters[0].url, masters[1].url}, func(c *Config) { c.StreamFailover = 100 * time.Millisecond })
	stop := runWatcher(t, w)
	waitFor(t, "initial sync", w.Ready)
	waitFor(t, "stream connected", func() bool { return w.Status().Connected })
	oneStream := func() bool { return masters[0].sim.Streams()+masters[1].sim.Streams() == 1 }
	waitFor(t, "one stream", oneStream)
	before := runtime.NumGoroutine()

	for i := range failovers {
		following := 0
		if masters[1].sim.Streams() == 1 {
			following = 1
		}
		other := masters[1-following]
		reconnects := w.Status().Reconnects
		masters[following].down()
		waitFor(t, "stream on the other master", func() bool {
			return other.sim.Streams() == 1 && w.Status().Connected && w.Status().Reconnects > reconnects
		})
		masters[following].up()
		masters[following].srv.Config.SetKeepAlivesEnabled(false)
		if i == failovers-1 {
			// Both, as masters of one cluster share their state; the
			// event comes from the one streaming.
			for _, m := range masters {
				newDriver(t, m.url).call(http.MethodPost, "/v2/apps", appDef("/after", 1, "after.example.com", false))
			}
			waitFor(t, "the change, from the stream", func() bool { return len(served(w.Snapshot(), "after.example.com")) == 1 })
		}
	}
	// go-marathon pings a member it marked down every 5 s until it
	// answers: its goroutine ends within one cycle of the master's return.
	after := runtime.NumGoroutine()
	err := poll.Until(t.Context(), "goroutines to settle", 15*time.Second, 100*time.Millisecond, func() error {
		if after = runtime.NumGoroutine(); after > before || !oneStream() {
			return fmt.Errorf("%d goroutines, %d before", after, before)
		}
		return nil
	})
	t.Logf("goroutines: %d before, %d after %d failovers", before, after, failovers)
	if err != nil {
		buf := make([]byte, 1<<20)
		t.Errorf("%v\n%s", err, buf[:runtime.Stack(buf, true)])
	}
	stop()
	for _, m := range masters {
		m.close()
	}
	if err := findLeaks(goleak.IgnoreCurrent()); err != nil {
		t.Error(err)
	}
}

// BenchmarkStatusUpdate: one status_update_event from the bytes to the
// task update, through go-marathon's event type (the baseline) and
// through the lean type the stream uses.
func BenchmarkStatusUpdate(b *testing.B) {
	data := []byte(statusEvent("/shop/web", "shop_web.1d6d9a5b-6c24-11e7-9b4c-0242ac110002", "TASK_RUNNING", v1, "10.0.0.1"))
	b.Run("go-marathon", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev, err := decodeEvent(statusUpdateEvent, data)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := parseTaskUpdate(ev); !ok {
				b.Fatal("no update")
			}
		}
	})
	b.Run("lean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := decodeStatusUpdate(data)
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := e.taskUpdate(); !ok {
				b.Fatal("no update")
			}
		}
	})
}

// parseTaskUpdate is the reference the lean decode is checked against: the
// task update of a status update as go-marathon decodes it, and false when
// ev is not one or does not parse cleanly.
func parseTaskUpdate(ev *marathon.Event) (taskUpdate, bool) {
	if ev == nil {
		return taskUpdate{}, false
	}
	e, ok := ev.Event.(*marathon.EventStatusUpdate)
	if !ok || e == nil {
		return taskUpdate{}, false
	}
	lean := statusUpdate{AppID: e.AppID, TaskID: e.TaskID, TaskStatus: e.TaskStatus, Version: e.Version, Host: e.Host, Ports: e.Ports}
	for _, ip := range e.IPAddresses {
		var addr *ipAddress
		if ip != nil {
			addr = &ipAddress{IPAddress: ip.IPAddress}
		}
		lean.IPAddresses = append(lean.IPAddresses, addr)
	}
	return lean.taskUpdate()
}
