// Package proc runs the child processes of oak's demo, benchmark and
// end-to-end tests (the simulator, CoreDNS): start, watch for an early exit,
// stop with a grace period.
package proc

import (
	"bytes"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is a started child process.
type Proc struct {
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, valid once done is closed
}

// Start starts cmd (its output, environment and attributes set by the
// caller) and waits for it in the background.
func Start(cmd *exec.Cmd) (*Proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop asks the process to end with SIGINT, as Ctrl-C would, and kills it
// after grace: its whole process group when it has one of its own.
func (p *Proc) Stop(grace time.Duration) {
	if exited, _ := p.Exited(); exited {
		return
	}
	_ = p.Cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(grace):
		if attr := p.Cmd.SysProcAttr; attr != nil && attr.Setpgid {
			_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		} else {
			_ = p.Cmd.Process.Kill()
		}
		<-p.done
	}
}

// Output collects a process's output; safe for concurrent use.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (o *Output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
