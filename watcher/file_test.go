package watcher

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oakdns/oak/catalog"
	"github.com/oakdns/oak/internal/poll"
)

func appsBody(names ...string) string {
	var apps []string
	for i, n := range names {
		apps = append(apps, `{"id":"/`+n+`","instances":1,"labels":{"OAK_NAMES":"`+n+`.example.com"},`+
			`"tasks":[{"id":"`+n+`.t1","appId":"/`+n+`","host":"10.0.0.1","state":"TASK_RUNNING",`+
			`"ipAddresses":[{"ipAddress":"10.1.0.`+itoa(i+1)+`","protocol":"IPv4"}]}]}`)
	}
	return `{"apps":[` + strings.Join(apps, ",") + `]}`
}

func testPolicy(t testing.TB) *catalog.Policy {
	t.Helper()
	p, err := catalog.NewPolicy(catalog.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFile replaces path atomically, as a dump tool should, and moves its
// mtime forward so that a change within the clock's granularity is seen.
func writeFile(t *testing.T, path, body string, age time.Duration) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(age)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	err := poll.Until(context.Background(), what, 20*time.Second, 2*time.Millisecond, func() error {
		if cond() {
			return nil
		}
		return errors.New("timed out")
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseApps(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    int
		wantErr bool
	}{
		{name: "two apps", body: appsBody("a", "b"), want: 2},
		{name: "no apps", body: `{"apps":[]}`, want: 0},
		{name: "unknown fields ignored", body: `{"apps":[{"id":"/a","gpus":0,"networks":[{"mode":"host"}]}],"x":1}`, want: 1},
		{name: "empty file", body: ``, wantErr: true},
		{name: "truncated", body: appsBody("a")[:40], wantErr: true},
		{name: "no apps field", body: `{}`, wantErr: true},
		{name: "null apps", body: `{"apps":null}`, wantErr: true},
		{name: "trailing data", body: `{"apps":[]} {"apps":[]}`, wantErr: true},
		{name: "wrong type", body: `{"apps":{"id":"/a"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			apps, err := parseApps(strings.NewReader(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && len(apps) != tt.want {
				t.Errorf("%d apps, want %d", len(apps), tt.want)
			}
		})
	}
}

func TestFileSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apps.json")
	src := NewFile(path, testPolicy(t), nil, WithPollInterval(5*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := src.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	defer wg.Wait()
	defer cancel()

	// Missing file: not ready, error reported, no snapshot.
	waitFor(t, "missing file reported", func() bool { return src.Status().LastError != nil })
	if src.Ready() || src.Snapshot() != nil {
		t.Fatal("ready without a file")
	}

	// Good file.
	writeFile(t, path, appsBody("a", "b"), -time.Hour)
	waitFor(t, "first load", src.Ready)
	first := src.Snapshot()
	if got := first.Stats().Apps; got != 2 {
		t.Fatalf("apps = %d, want 2", got)
	}
	if st := src.Status(); st.LastError != nil || !st.Connected || st.Apps != 2 || st.Tasks != 2 {
		t.Fatalf("status after good load = %+v", st)
	}
	if a := first.Resolve("integration", "b.example.com"); a.Service == nil {
		t.Fatal("b.example.com not served")
	}

	// Change.
	writeFile(t, path, appsBody("a", "b", "c"), -time.Minute)
	waitFor(t, "reload", func() bool { return src.Snapshot().Stats().Apps == 3 })

	// The same content again: read, and nothing to apply.
	changed := src.Snapshot()
	loads := src.Status().Syncs
	writeFile(t, path, appsBody("a", "b", "c"), -30*time.Second)
	waitFor(t, "reload of the same content", func() bool { return src.Status().Syncs > loads })
	if src.Snapshot() != changed {
		t.Error("an unchanged file published a new snapshot")
	}

	// Bad file: the last good snapshot stays, the error is reported.
	good := src.Snapshot()
	failures := src.Status().Failures
	writeFile(t, path, `{"apps":[{"id":"/a",`, 0)
	waitFor(t, "bad file reported", func() bool { return src.Status().Failures > failures })
	st := src.Status()
	if st.LastError == nil || st.Connected {
		t.Fatalf("status after bad file = %+v", st)
	}
	if src.Snapshot() != good || !src.Ready() {
		t.Fatal("bad file replaced the last good snapshot")
	}

	// Fixed again.
	writeFile(t, path, appsBody("z"), time.Minute)
	waitFor(t, "recovery", func() bool { return src.Snapshot().Stats().Apps == 1 })
	if st := src.Status(); st.LastError != nil {
		t.Fatalf("error after recovery: %v", st.LastError)
	}
}

func TestFileSourceRunsOnce(t *testing.T) {
	src := NewFile(filepath.Join(t.TempDir(), "none.json"), testPolicy(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := src.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := src.Run(ctx); err == nil {
		t.Fatal("second Run succeeded")
	}
}
