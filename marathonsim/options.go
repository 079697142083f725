package marathonsim

import (
	"io"
	"log/slog"
	"net/netip"
	"time"
)

// Options configures a Server. The zero value is a usable simulator with
// small delays. For the durations below, zero means the default and a
// negative value means "no delay at all" (useful for tests and benchmarks).
type Options struct {
	// Apps is a GET /v2/apps?embed=apps.tasks JSON body to start from. Its
	// apps and tasks are loaded as they are (ids, states, addresses), and
	// Reset returns to it. New panics when it does not parse; use
	// (*Server).LoadApps to get the error instead.
	Apps []byte

	// TaskCIDR is the fake range task ipAddresses come from when the app has
	// no Docker "ip" parameter. The addresses are data only, never contacted.
	// Default 10.199.46.0/24.
	TaskCIDR netip.Prefix
	// Host is the agent host of every task. Default "127.0.0.1".
	Host string
	// AgentID is the slaveId of every task. Default "marathonsim-S1".
	AgentID string
	// Leader is what GET /v2/leader reports. Default: the request's Host.
	Leader string

	// StagingDelay is how long a new task stays TASK_STAGING before it
	// becomes TASK_RUNNING. Default 20ms.
	StagingDelay time.Duration
	// HealthDelay is how long a running task of an app with health checks
	// waits for its first (alive) health check result. Default 20ms.
	HealthDelay time.Duration
	// RestartBackoff is how long a failed task waits before its replacement
	// is launched, like Marathon's backoffSeconds. Default 100ms.
	RestartBackoff time.Duration
	// KillDelay is how long a task being killed (scale down, restart,
	// delete, a kill request, failed health checks) stays TASK_KILLING,
	// still listed, before Mesos's TASK_KILLED removes it. Default 200ms.
	KillDelay time.Duration
	// HealthCheckInterval replaces the intervalSeconds of every app's health
	// checks as the period at which an unhealthy task fails its next check.
	// Zero: each app's own intervalSeconds (Marathon's default is 60 s).
	// Negative: no periodic checks; only SetTaskHealth calls count as checks.
	HealthCheckInterval time.Duration

	// Heartbeat is the period of the blank-line heartbeat on event streams.
	// Default 10s, as Jetty's EventSourceServlet.
	Heartbeat time.Duration
	// SSERetry, when positive, puts a test-only "retry: <ms>" line on the
	// first frame of every stream so that eventsource reconnects faster.
	// Real Marathon never sends it.
	SSERetry time.Duration
	// EventBuffer is the number of frames buffered per event stream client;
	// a client that falls further behind is disconnected. Default 256.
	EventBuffer int
	// WriteTimeout bounds each write to an event stream. Default 10s.
	WriteTimeout time.Duration

	// User and Password, when both set, require HTTP basic auth on every
	// endpoint but /_sim/, /ping included, as Marathon's --http_credentials.
	User, Password string
	// Token, when set, accepts "Authorization: token=<Token>" (DC/OS).
	Token string

	// PlanGroups says what the "original" and "target" root groups of
	// deployment plans (in deployment_info, deployment_step_success,
	// deployment_success and deployment_failed events) hold:
	// PlanGroupsFull (the default, "" too) or PlanGroupsAffected. New panics
	// on any other value.
	PlanGroups string

	// Docker, when set, runs the tasks of Docker apps as real containers
	// (docker mode, see Docker). Nil: tasks are data only.
	Docker *Docker

	// Logger receives request and fault logs. Nil discards them.
	Logger *slog.Logger
}

// Values of Options.PlanGroups.
const (
	// PlanGroupsFull puts the whole root group, every app, in plans, as
	// Marathon does. Each deployment event then costs O(apps): about 2 KB
	// per app, so a few MB per event on a 10,000-app cluster.
	PlanGroupsFull = "full"
	// PlanGroupsAffected puts only the app a deployment touches in its
	// plan's root groups (with the groups above it), so that a storm of
	// changes on a large cluster costs O(1) per event. This deviates from
	// Marathon and is meant for benchmarks of clients that, like oak's
	// watcher, read only the plan id and steps; go-marathon decodes such
	// plans as it decodes full ones.
	PlanGroupsAffected = "affected"
)

// withDefaults returns opts with zero fields replaced by their defaults and
// negative durations replaced by zero.
func (opts Options) withDefaults() Options {
	if !opts.TaskCIDR.IsValid() {
		opts.TaskCIDR = netip.MustParsePrefix("10.199.46.0/24")
	}
	opts.TaskCIDR = opts.TaskCIDR.Masked()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.AgentID == "" {
		opts.AgentID = "marathonsim-S1"
	}
	opts.StagingDelay = duration(opts.StagingDelay, 20*time.Millisecond)
	opts.HealthDelay = duration(opts.HealthDelay, 20*time.Millisecond)
	opts.RestartBackoff = duration(opts.RestartBackoff, 100*time.Millisecond)
	opts.KillDelay = duration(opts.KillDelay, 200*time.Millisecond)
	opts.Heartbeat = duration(opts.Heartbeat, 10*time.Second)
	opts.WriteTimeout = duration(opts.WriteTimeout, 10*time.Second)
	if opts.SSERetry < 0 {
		opts.SSERetry = 0
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	if opts.PlanGroups == "" {
		opts.PlanGroups = PlanGroupsFull
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return opts
}

func duration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
