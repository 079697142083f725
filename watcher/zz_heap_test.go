package watcher

import (
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

func TestZZHeapProfile(t *testing.T) {
	body := appsJSON(10000, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	runtime.MemProfileRate = 1
	w := newWatcher(t, []string{srv.URL}, nil)
	s := testSession(t, w)
	for range 2 {
		if err := w.fullSync(s); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
	f, _ := os.Create("/tmp/h/live.pb")
	pprof.Lookup("heap").WriteTo(f, 0)
	f.Close()
	runtime.KeepAlive(w)
}
