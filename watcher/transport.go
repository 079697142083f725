package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// errStopped is what every request gets once the watcher has stopped.
var errStopped = errors.New("watcher stopped")

// streamHooks receives what the transport sees of the SSE connection, which
// go-marathon v0.7.1 hides (it only logs stream errors, docs/marathon-api.md §1.5).
type streamHooks struct {
	up   func()          // GET /v2/events answered 200
	down func(err error) // the stream ended, or a (re)connect failed
}

// transport is the RoundTripper of the one *http.Client handed to
// go-marathon (for REST, SSE and its /ping health checks). It works around
// what go-marathon v0.7.1 lacks (no contexts, no Close, a hidden stream):
//
//   - every request is bound to the watcher's lifetime, so stopping the
//     watcher cuts the event stream, which RemoveEventsListener never does
//     (§1.5 item 4), and aborts REST calls in flight;
//   - REST requests get a deadline for the whole exchange, body included,
//     which http.Client.Timeout cannot give without cutting the stream
//     (§1.4, #237);
//   - the event stream's connects and disconnects become visible;
//   - with a DC/OS token, the event stream gets the "/marathon" prefix
//     that go-marathon adds to REST paths but forgets on /v2/events
//     (§1.5 item 6);
//   - the event stream asks Marathon for the events the watcher uses only
//     (?event_type=, see streamEventTypes).
type transport struct {
	base    *http.Transport
	life    context.Context // done when the watcher stops
	timeout time.Duration   // per REST request
	dcos    bool            // prefix the event stream path with /marathon
	hooks   streamHooks
}

func newTransport(life context.Context, timeout time.Duration, idlePerHost int, dcos bool, hooks streamHooks) *transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &transport{
		base: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 15 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConnsPerHost:   idlePerHost,
		},
		life:    life,
		timeout: timeout,
		dcos:    dcos,
		hooks:   hooks,
	}
}

// client returns the *http.Client for go-marathon: no Timeout (it would kill
// the stream) and a fresh value, because eventsource sets CheckRedirect on
// the client it is given.
func (t *transport) client() *http.Client {
	return &http.Client{Transport: t}
}

// close releases idle connections; the live ones end with t.life.
func (t *transport) close() {
	t.base.CloseIdleConnections()
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	stream := strings.HasSuffix(req.URL.Path, "/v2/events")
	if t.life.Err() != nil {
		if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/ping") {
			// go-marathon's member health check loops until /ping answers
			// 200 and has no other exit; answering for a stopped watcher
			// lets that goroutine end instead of leaking.
			return &http.Response{
				Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
				Header: http.Header{}, Body: io.NopCloser(strings.NewReader("pong")), Request: req,
			}, nil
		}
		return nil, errStopped
	}

	var ctx context.Context
	var cancel context.CancelFunc
	if stream {
		ctx, cancel = context.WithCancel(req.Context())
	} else {
		ctx, cancel = context.WithTimeout(req.Context(), t.timeout)
	}
	stop := context.AfterFunc(t.life, cancel)
	release := func() {
		stop()
		cancel()
	}

	out := req.WithContext(ctx)
	if stream {
		u := *req.URL
		if t.dcos && !strings.HasSuffix(u.Path, "/marathon/v2/events") {
			u.Path = strings.TrimSuffix(u.Path, "/v2/events") + "/marathon/v2/events"
			u.RawPath = ""
		}
		u.RawQuery = url.Values{"event_type": streamEventTypes}.Encode()
		out.URL = &u
	}
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		release()
		if stream {
			t.streamDown(err)
		}
		return nil, err
	}
	body := &releasingBody{ReadCloser: resp.Body, release: release}
	if stream {
		if resp.StatusCode == http.StatusOK {
			t.hooks.up()
			body.ended = t.streamDown
		} else {
			t.streamDown(fmt.Errorf("event stream: HTTP %s", resp.Status))
		}
	}
	resp.Body = body
	return resp, nil
}

func (t *transport) streamDown(err error) {
	if t.life.Err() != nil {
		return // our own shutdown, not news
	}
	t.hooks.down(err)
}

// releasingBody frees the request's context when the body is done, which is
// at EOF or error as well as at Close: eventsource never closes the body of
// a failed reconnect, and go-marathon's /ping check never closes its body.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
	ended   func(error) // for the event stream: it ended with this error
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.finish(err)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.finish(errors.New("event stream closed"))
	return err
}

func (b *releasingBody) finish(err error) {
	b.once.Do(func() {
		if b.ended != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // Marathon never ends a stream on purpose
			}
			b.ended(err)
		}
		b.release()
	})
}

// debugLog is go-marathon's LogOutput: its debug log (one Printf per REST
// call, with the whole response body) as slog debug records when the
// logger takes them, and nil otherwise. go-marathon then writes to
// io.Discard, which the log package skips without formatting: the
// formatting of a 10,000-app body costs tens of milliseconds per resync.
// Decided once per session, i.e. per connection to Marathon.
func debugLog(log *slog.Logger) io.Writer {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return nil
	}
	return logWriter{log}
}

// logWriter writes each line as a slog debug record.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Debug("go-marathon", "line", strings.TrimSpace(string(p)))
	return len(p), nil
}
