package marathon

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"unicode"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

// logHandler sends the watcher's slog records to CoreDNS's log, so that
// they carry the usual "[LEVEL] plugin/marathon:" prefix and debug lines
// appear only with the `debug` plugin.
type logHandler struct {
	out    clog.P
	attrs  string // pre-rendered " key=value" pairs from WithAttrs
	prefix string // group prefix for keys, "group." ...
}

func newLogHandler(out clog.P) *logHandler { return &logHandler{out: out} }

// Enabled implements slog.Handler. Debug records are enabled only while
// CoreDNS's `debug` plugin is on: the watcher checks this before it formats
// go-marathon's multi-megabyte debug lines, which would otherwise cost CPU
// on every sync only for clog to drop them.
func (h *logHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelInfo || clog.D.Value()
}

// Handle implements slog.Handler.
func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	var line strings.Builder
	line.WriteString(r.Message)
	line.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&line, h.prefix, a)
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		h.out.Error(line.String())
	case r.Level >= slog.LevelWarn:
		h.out.Warning(line.String())
	case r.Level >= slog.LevelInfo:
		h.out.Info(line.String())
	default:
		h.out.Debug(line.String())
	}
	return nil
}

// WithAttrs implements slog.Handler.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var line strings.Builder
	line.WriteString(h.attrs)
	for _, a := range attrs {
		writeAttr(&line, h.prefix, a)
	}
	return &logHandler{out: h.out, attrs: line.String(), prefix: h.prefix}
}

// WithGroup implements slog.Handler.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{out: h.out, attrs: h.attrs, prefix: h.prefix + name + "."}
}

func writeAttr(line *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		groupPrefix := prefix
		if a.Key != "" {
			groupPrefix += a.Key + "."
		}
		for _, member := range a.Value.Group() {
			writeAttr(line, groupPrefix, member)
		}
		return
	}
	line.WriteByte(' ')
	line.WriteString(prefix)
	line.WriteString(a.Key)
	line.WriteByte('=')
	value := a.Value.String()
	if value == "" || strings.IndexFunc(value, needsQuote) >= 0 {
		value = strconv.Quote(value)
	}
	line.WriteString(value)
}

// needsQuote reports runes that would make a value ambiguous or forge a
// line: separators, quotes and anything unprintable (label values from
// Marathon are logged as they came).
func needsQuote(r rune) bool {
	return r == ' ' || r == '"' || r == '=' || !unicode.IsPrint(r)
}
