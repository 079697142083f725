package nginxctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// Nginx is one Nginx whose prefix directory nginxctl owns: the main config,
// the rendered include, the pid file, logs and temp paths all live in Dir,
// so that Nginx needs nothing outside it and runs without root.
type Nginx struct {
	Binary  string // path of the nginx executable
	Dir     string // absolute prefix directory (nginx -p)
	Workers int    // worker_processes; 0 = auto
}

// Files in an Nginx prefix directory.
const (
	mainFile      = "nginx.conf"       // includes routesFile
	checkFile     = "nginx-check.conf" // the same, including candidateFile: for nginx -t
	routesFile    = "routes.conf"      // the live rendered config
	candidateFile = "routes.conf.next" // a rendered config being checked
	previousFile  = "routes.conf.prev" // the config before the last apply, kept until it succeeds
	pidFile       = "nginx.pid"
	errorLogFile  = "logs/error.log"
)

// NewNginx checks that dir can be written into Nginx's config as it is.
func NewNginx(binary, dir string, workers int) (*Nginx, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if i := strings.IndexFunc(abs, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+", c))
	}); i >= 0 {
		return nil, fmt.Errorf("nginx dir %q: only [A-Za-z0-9/._+-] are allowed in its path", abs)
	}
	if workers < 0 {
		return nil, fmt.Errorf("nginx workers %d: want 0 (auto) or more", workers)
	}
	return &Nginx{Binary: binary, Dir: abs, Workers: workers}, nil
}

func (n *Nginx) path(name string) string { return filepath.Join(n.Dir, name) }

// Prepare creates the directory layout and writes the main configs. When
// there is no routes.conf yet it writes one that answers 503 to every
// virtual host until the first view; a config left by an earlier run stays
// live until a view replaces it.
func (n *Nginx) Prepare(o RenderOptions) error {
	waiting, err := renderWaiting(o)
	if err != nil {
		return err
	}
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(n.path(mainFile), n.mainConfig(routesFile)); err != nil {
		return err
	}
	if err := writeFileAtomic(n.path(checkFile), n.mainConfig(candidateFile)); err != nil {
		return err
	}
	if _, err := os.Stat(n.path(routesFile)); errors.Is(err, os.ErrNotExist) {
		return writeFileAtomic(n.path(routesFile), waiting.Text)
	} else if err != nil {
		return err
	}
	return nil
}

// mainConfig is the static part: paths inside Dir and the include.
func (n *Nginx) mainConfig(include string) []byte {
	workers := "auto"
	if n.Workers > 0 {
		workers = strconv.Itoa(n.Workers)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Written by nginxctl at start; the routes are in %[2]s.
pid %[1]s/%[3]s;
error_log %[1]s/%[4]s notice;
worker_processes %[5]s;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path %[1]s/temp/client_body;
    proxy_temp_path %[1]s/temp/proxy;
    fastcgi_temp_path %[1]s/temp/fastcgi;
    uwsgi_temp_path %[1]s/temp/uwsgi;
    scgi_temp_path %[1]s/temp/scgi;
    include %[1]s/%[2]s;
}
`, n.Dir, include, pidFile, errorLogFile, workers)
	return b.Bytes()
}

// args are the arguments every nginx invocation starts with. -e keeps
// Nginx from opening its compiled-in error log before it reads the config.
func (n *Nginx) args(conf string) []string {
	return []string{"-p", n.Dir + "/", "-c", n.path(conf), "-e", n.path(errorLogFile)}
}

// Check runs nginx -t on the main config that includes the candidate.
func (n *Nginx) Check(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, n.Binary, append(n.args(checkFile), "-t", "-q")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -t: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Pid reads the master's pid from the pid file and checks that it is an
// nginx process, so that a stale pid file never makes nginxctl signal
// another program.
func (n *Nginx) Pid() (int, error) {
	b, err := os.ReadFile(n.path(pidFile))
	if err != nil {
		return 0, fmt.Errorf("nginx pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("nginx pid file %s: %q is not a pid", n.path(pidFile), shown(string(b)))
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return 0, fmt.Errorf("nginx pid %d: %w", pid, err)
	}
	if !strings.HasPrefix(string(comm), "nginx") {
		return 0, fmt.Errorf("nginx pid file names pid %d, which is %q, not nginx", pid, strings.TrimSpace(string(comm)))
	}
	return pid, nil
}

// Reloader makes a running Nginx load its config again. Reload returns
// once the new config is loaded and the workers of the old one have
// stopped accepting connections, or with an error.
type Reloader interface {
	Reload(ctx context.Context) error
}

// SignalReloader reloads the Nginx whose pid file is in its prefix
// directory with SIGHUP, as nginx -s reload does. A reloader for an Nginx
// in a container would send the signal through the Docker API instead.
type SignalReloader struct{ Nginx *Nginx }

// Reload implements Reloader. Nginx's master starts new workers, lets old
// and new ones accept side by side for 100 ms, then tells the old ones to
// shut down, which they show in their process title as they close their
// listening sockets. So the reload is done when every worker that ran
// before the signal shows that title or has exited; when the new config
// does not load, the old workers are never told, and ctx ends the wait.
func (r SignalReloader) Reload(ctx context.Context) error {
	pid, err := r.Nginx.Pid()
	if err != nil {
		return err
	}
	old := accepting(children(pid))
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("nginx reload: signal pid %d: %w", pid, err)
	}
	for {
		if old = accepting(old); len(old) == 0 {
			return nil
		}
		if !poll.Sleep(ctx, 2*time.Millisecond) {
			return fmt.Errorf("nginx reload: workers %v of the old config still accept connections (see %s)", old, r.Nginx.path(errorLogFile))
		}
	}
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// accepting returns the pids that still run and are not shutting down.
func accepting(pids []int) []int {
	var out []int
	for _, pid := range pids {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 || bytes.Contains(cmdline, []byte("shutting down")) {
			continue // gone (a zombie has an empty cmdline), or closing its sockets
		}
		out = append(out, pid)
	}
	return out
}

// Supervise runs Nginx in the foreground on the main config and starts it
// again when it dies, with a backoff, until ctx ends; then it stops Nginx
// gracefully (SIGQUIT), and kills it after grace. ready is called each time
// a started Nginx has written its pid file.
func (n *Nginx) Supervise(ctx context.Context, log *slog.Logger, grace time.Duration, ready func()) error {
	failures := 0
	for {
		started := time.Now()
		err := n.runOnce(ctx, log, grace, ready)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			failures = 0
		}
		failures++
		delay := poll.Backoff(failures, 100*time.Millisecond, 10*time.Second)
		log.Error("nginx exited; starting it again", "err", err, "in", delay)
		if !poll.Sleep(ctx, delay) {
			return nil
		}
	}
}

func (n *Nginx) runOnce(ctx context.Context, log *slog.Logger, grace time.Duration, ready func()) error {
	_ = os.Remove(n.path(pidFile)) // a stale one would pass for the new master's
	cmd := exec.Command(n.Binary, append(n.args(mainFile), "-g", "daemon off;")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	log.Info("nginx started", "pid", cmd.Process.Pid, "dir", n.Dir)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	go func() {
		err := poll.Until(ctx, "nginx pid file", 30*time.Second, 10*time.Millisecond, func() error {
			pid, err := n.Pid()
			if err == nil && pid != cmd.Process.Pid {
				err = fmt.Errorf("pid file names %d, not %d", pid, cmd.Process.Pid)
			}
			return err
		})
		if err == nil && ready != nil {
			ready()
		}
	}()

	select {
	case err := <-done:
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out.Bytes()))
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Info("nginx stopped")
		return nil
	}
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it over path, so that readers see the old or the new file, never a part.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
