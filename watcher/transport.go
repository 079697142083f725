package watcher

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// errStopped is what every request gets once the watcher has stopped.
var errStopped = errors.New("watcher stopped")

// transport is the RoundTripper of the *http.Client handed to go-marathon
// (REST and its /ping health checks). It works around what go-marathon
// v0.7.1 lacks (no contexts, no Close):
//
//   - every request is bound to the watcher's lifetime, so stopping the
//     watcher aborts REST calls in flight;
//   - REST requests get a deadline for the whole exchange, body included,
//     which http.Client.Timeout gives too but go-marathon's one client
//     would share with nothing else.
//
// The event stream shares its connection pool (streamClient), without
// the deadline.
type transport struct {
	base    *http.Transport
	life    context.Context // done when the watcher stops
	timeout time.Duration   // per REST request
}

func newTransport(life context.Context, timeout time.Duration, idlePerHost int) *transport {
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
	}
}

// client returns the *http.Client for go-marathon.
func (t *transport) client() *http.Client {
	return &http.Client{Transport: t}
}

// streamClient returns the client of the event stream: no deadline, the
// request's context ends it.
func (t *transport) streamClient() *http.Client {
	return &http.Client{Transport: t.base}
}

// close releases idle connections; the live ones end with t.life.
func (t *transport) close() {
	t.base.CloseIdleConnections()
}

// RoundTrip implements http.RoundTripper.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.life.Err() != nil {
		if isPing(req) {
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
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	stop := context.AfterFunc(t.life, cancel)
	resp, err := t.base.RoundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	release := func() {
		stop()
		cancel()
	}
	if isPing(req) {
		// go-marathon's /ping check reads only the status and never closes
		// the body, which would hold the connection (and its two
		// goroutines) until the deadline: read "pong" here instead.
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody))
		resp.Body.Close()
		release()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, err
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// maxPingBody bounds what is read of a /ping answer; Marathon's is "pong".
const maxPingBody = 4 << 10

func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/ping")
}

// releasingBody frees the request's context when the body is done, at EOF
// or error as well as at Close.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.release)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// debugLog is go-marathon's LogOutput: its debug log (one Printf per REST
// call, with the whole response body) as slog debug records when the
// logger takes them, and nil otherwise. go-marathon then writes to
// io.Discard, which the log package skips without formatting: the
// formatting of a 10,000-app body costs tens of milliseconds per resync.
// Decided once per Run.
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
