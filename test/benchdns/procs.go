package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oakdns/oak/internal/proc"
)

// child is a process the benchmark started, pinned to one CPU with
// taskset. Its output is kept for error messages.
type child struct {
	*proc.Proc
	name string
	out  *proc.Output
}

// tail is the last lines of s, for error messages.
func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// children tracks every process the benchmark started, so that all of them
// are stopped on every exit path.
type children struct {
	taskset string
	mu      sync.Mutex
	list    []*child
}

// start runs `taskset -c cpu path args...` with extra environment. The
// child gets its own process group (Ctrl-C in the terminal reaches only the
// benchmark, which stops it in order) and SIGKILL if the benchmark dies.
func (c *children) start(name, cpu string, env []string, path string, args ...string) (*child, error) {
	ch := &child{name: name, out: &proc.Output{}}
	cmd := exec.Command(c.taskset, append([]string{"-c", cpu, path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = ch.out, ch.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var err error
	if ch.Proc, err = proc.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch, nil
}

// exited reports whether ch has ended, with its error and output.
func (ch *child) exited() error {
	if exited, err := ch.Exited(); exited {
		return fmt.Errorf("%s exited (%v):\n%s", ch.name, err, tail(ch.out.String(), 20))
	}
	return nil
}

// stopAll stops every child still running, newest first.
func (c *children) stopAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop(5 * time.Second)
	}
}
