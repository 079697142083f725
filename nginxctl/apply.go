package nginxctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/oakdns/oak/internal/poll"
)

// Stage names where an apply failed; it is the result label of
// oak_nginx_reloads_total.
type Stage string

// Stages of an apply.
const (
	StageWrite  Stage = "write_failed"  // the candidate could not be written or renamed
	StageCheck  Stage = "check_failed"  // nginx -t rejected the candidate
	StageReload Stage = "reload_failed" // the reload signal could not be sent
	StageVerify Stage = "verify_failed" // Nginx did not serve the new generation in time
)

// ApplyError is a failed apply: the previous config is live again.
type ApplyError struct {
	Stage Stage
	Err   error
}

func (e *ApplyError) Error() string { return fmt.Sprintf("apply %s: %v", e.Stage, e.Err) }

func (e *ApplyError) Unwrap() error { return e.Err }

// Applier makes rendered configs live in one Nginx: candidate beside the
// live file, nginx -t, atomic rename, reload, and a check that Nginx serves
// the new generation. It is used by one goroutine at a time.
type Applier struct {
	Nginx    *Nginx
	Reloader Reloader
	Control  netip.AddrPort // where Nginx serves GenerationPath
	// VerifyTimeout bounds the wait for the new generation after a reload.
	VerifyTimeout time.Duration

	client *http.Client
}

// Timing is how long the stages of an apply took.
type Timing struct {
	Check, Reload time.Duration // nginx -t; reload signal to new generation served
}

// NewApplier returns an Applier that reloads n with r and verifies through
// control.
func NewApplier(n *Nginx, r Reloader, control netip.AddrPort, verifyTimeout time.Duration) *Applier {
	return &Applier{
		Nginx: n, Reloader: r, Control: control, VerifyTimeout: verifyTimeout,
		// A new connection for every probe: a kept-alive one may be held by
		// an old worker that still serves the old generation.
		client: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// Live returns the live config text; nil when there is none.
func (a *Applier) Live() []byte {
	b, _ := os.ReadFile(a.Nginx.path(routesFile))
	return b
}

// Apply makes cfg live and reports whether anything changed: text equal to
// the live file is not applied again. On an error (an *ApplyError) the
// previous file is live again and Nginx was asked to reload it, so Nginx
// keeps serving the previous config.
func (a *Applier) Apply(ctx context.Context, cfg Config) (changed bool, timing Timing, err error) {
	live := a.Live()
	if bytes.Equal(live, cfg.Text) {
		if served, err := a.Served(ctx); err == nil && served == cfg.Generation {
			return false, timing, nil
		}
		// On disk but not served: an Nginx started before the file was
		// written, or one that missed a reload.
		start := time.Now()
		err = a.reload(ctx, cfg.Generation)
		timing.Reload = time.Since(start)
		return err == nil, timing, err
	}
	candidate := a.Nginx.path(candidateFile)
	if err := os.WriteFile(candidate, cfg.Text, 0o644); err != nil {
		return false, timing, &ApplyError{StageWrite, err}
	}
	start := time.Now()
	err = a.Nginx.Check(ctx)
	timing.Check = time.Since(start)
	if err != nil {
		_ = os.Remove(candidate)
		return false, timing, &ApplyError{StageCheck, err}
	}

	routes, previous := a.Nginx.path(routesFile), a.Nginx.path(previousFile)
	if err := writeFileAtomic(previous, live); err != nil {
		return false, timing, &ApplyError{StageWrite, err}
	}
	if err := os.Rename(candidate, routes); err != nil {
		return false, timing, &ApplyError{StageWrite, err}
	}
	start = time.Now()
	err = a.reload(ctx, cfg.Generation)
	timing.Reload = time.Since(start)
	if err != nil {
		// Nginx that refused the new config still runs the old one; one
		// that took it runs the old one again.
		if os.Rename(previous, routes) == nil {
			_ = a.reload(ctx, liveGeneration(live))
		}
		return false, timing, err
	}
	return true, timing, nil
}

func (a *Applier) reload(ctx context.Context, gen string) error {
	reloadCtx, cancel := context.WithTimeout(ctx, a.VerifyTimeout)
	defer cancel()
	if err := a.Reloader.Reload(reloadCtx); err != nil {
		return &ApplyError{StageReload, err}
	}
	if err := a.waitGeneration(ctx, gen); err != nil {
		return &ApplyError{StageVerify, err}
	}
	return nil
}

// Served returns the generation Nginx serves now.
func (a *Applier) Served(ctx context.Context) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Control.String()+GenerationPath, nil)
	if err != nil {
		return "", err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", GenerationPath, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

func (a *Applier) waitGeneration(ctx context.Context, gen string) error {
	if gen == "" {
		return errors.New("the live config names no generation")
	}
	return poll.Until(ctx, "generation "+gen, a.VerifyTimeout, 5*time.Millisecond, func() error {
		served, err := a.Served(ctx)
		if err == nil && served != gen {
			err = fmt.Errorf("nginx serves generation %q", served)
		}
		return err
	})
}
