package watcher

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestDebugLog: go-marathon's debug lines become slog debug records when
// the logger takes them; otherwise go-marathon gets no writer at all, so
// that it does not format response bodies for nothing.
func TestDebugLog(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  bool
	}{
		{slog.LevelDebug, true},
		{slog.LevelInfo, false},
	} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))
		w := debugLog(log)
		if (w != nil) != tc.want {
			t.Fatalf("level %v: writer %v, want one: %v", tc.level, w, tc.want)
		}
		if w == nil {
			continue
		}
		if _, err := w.Write([]byte("apiCall(): GET /v2/apps returned 200 OK {}\n")); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, `line="apiCall(): GET /v2/apps returned 200 OK {}"`) {
			t.Errorf("record %q", got)
		}
	}
}
