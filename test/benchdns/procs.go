package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the benchmark started, pinned to one CPU with
// taskset. Its output is kept for error messages.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error // valid after done
}

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
	ch := &child{name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	ch.cmd = exec.Command(c.taskset, append([]string{"-c", cpu, path}, args...)...)
	ch.cmd.Env = append(os.Environ(), env...)
	ch.cmd.Stdout, ch.cmd.Stderr = ch.out, ch.out
	ch.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := ch.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { ch.err = ch.cmd.Wait(); close(ch.done) }()
	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch, nil
}

// exited reports whether ch has ended, with its error and output.
func (ch *child) exited() error {
	select {
	case <-ch.done:
		return fmt.Errorf("%s exited (%v):\n%s", ch.name, ch.err, tail(ch.out.String(), 20))
	default:
		return nil
	}
}

// stop asks ch to end (SIGINT, as Ctrl-C would) and kills its process group
// after grace.
func (ch *child) stop(grace time.Duration) {
	select {
	case <-ch.done:
		return
	default:
	}
	_ = ch.cmd.Process.Signal(os.Interrupt)
	select {
	case <-ch.done:
	case <-time.After(grace):
		_ = syscall.Kill(-ch.cmd.Process.Pid, syscall.SIGKILL)
		<-ch.done
	}
}

// stopAll stops every child still running, newest first.
func (c *children) stopAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop(5 * time.Second)
	}
}
