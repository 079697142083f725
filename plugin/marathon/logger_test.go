package marathon

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

func TestLogHandler(t *testing.T) {
	var out bytes.Buffer
	clog.SetOutput(&out)
	t.Cleanup(func() { clog.SetOutput(os.Stderr) })

	logger := slog.New(newLogHandler(clog.NewWithPlugin("marathon"))).With("source", "http://m1:8080").WithGroup("sync")
	logger.Info("full sync", "apps", 3, slog.Group("took", "ms", 12))
	logger.Warn("marathon unreachable", "err", "dial tcp: connection refused")
	logger.Error("bad", "empty", "")
	logger.Warn("rejected", "value", "x\n[ERROR] forged\ttab")
	logger.Debug("hidden without the debug plugin")

	for _, want := range []string{
		`[INFO] plugin/marathon: full sync source=http://m1:8080 sync.apps=3 sync.took.ms=12`,
		`[WARNING] plugin/marathon: marathon unreachable source=http://m1:8080 sync.err="dial tcp: connection refused"`,
		`[ERROR] plugin/marathon: bad source=http://m1:8080 sync.empty=""`,
		`[WARNING] plugin/marathon: rejected source=http://m1:8080 sync.value="x\n[ERROR] forged\ttab"`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "hidden") {
		t.Errorf("debug line logged without the debug plugin:\n%s", out.String())
	}
}

// TestLogHandlerEnabled: debug records are reported disabled unless the
// debug plugin is on, so the watcher skips formatting them.
func TestLogHandlerEnabled(t *testing.T) {
	h := newLogHandler(clog.NewWithPlugin("marathon"))
	ctx := t.Context()
	if !h.Enabled(ctx, slog.LevelInfo) || !h.Enabled(ctx, slog.LevelError) {
		t.Error("info and error must be enabled")
	}
	if h.Enabled(ctx, slog.LevelDebug) {
		t.Error("debug enabled without the debug plugin")
	}
	clog.D.Set()
	t.Cleanup(clog.D.Clear)
	if !h.Enabled(ctx, slog.LevelDebug) {
		t.Error("debug disabled with the debug plugin on")
	}
}
