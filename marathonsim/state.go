package marathonsim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// fields is an app definition as Marathon stores it: top-level JSON keys to
// canonical values (see canonical). Keeping the definition as JSON rather
// than as a struct lets loaded fixtures and unknown fields round-trip.
type fields map[string]json.RawMessage

// app is one Marathon app. Guarded by Server.mu.
type app struct {
	id            string
	def           fields // definition without computed keys
	spec          appSpec
	version       string // any change
	configVersion string // last change other than scaling; the tasks' version
	scalingAt     string
	versions      map[string]fields // history for /versions, newest in order
	order         []string          // version timestamps, oldest first
	lastFailure   *lastTaskFailure
	planJSON      json.RawMessage // definition at version, for plans; built on first use
}

// appSpec is the part of a definition the simulator acts on.
type appSpec struct {
	ID              string            `json:"id"`
	Instances       *int              `json:"instances"`
	Labels          map[string]string `json:"labels"`
	Container       *containerSpec    `json:"container"`
	PortDefinitions []portDefinition  `json:"portDefinitions"`
	Ports           []int             `json:"ports"`
	HealthChecks    []json.RawMessage `json:"healthChecks"`
	RequirePorts    bool              `json:"requirePorts"`

	UpgradeStrategy *struct {
		MinimumHealthCapacity *float64 `json:"minimumHealthCapacity"`
		MaximumOverCapacity   *float64 `json:"maximumOverCapacity"`
	} `json:"upgradeStrategy"`

	// What a container needs in docker mode (see docker.go).
	Cmd       *string                    `json:"cmd"`
	Args      []string                   `json:"args"`
	Env       map[string]json.RawMessage `json:"env"` // strings, or secret references (ignored)
	IPAddress *struct {
		NetworkName string `json:"networkName"`
	} `json:"ipAddress"`
}

type containerSpec struct {
	Type    string       `json:"type"`
	Docker  *dockerSpec  `json:"docker"`
	Volumes []volumeSpec `json:"volumes"`
}

type volumeSpec struct {
	ContainerPath string `json:"containerPath"`
	HostPath      string `json:"hostPath"`
	Mode          string `json:"mode"` // RW or RO
}

type dockerSpec struct {
	Image        string        `json:"image"`
	Privileged   bool          `json:"privileged"`
	Network      string        `json:"network"`
	Parameters   []dockerParam `json:"parameters"`
	PortMappings []portMapping `json:"portMappings"`
}

type dockerParam struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type portMapping struct {
	ContainerPort int `json:"containerPort"`
	HostPort      int `json:"hostPort"`
	ServicePort   int `json:"servicePort"`
}

type portDefinition struct {
	Port int `json:"port"`
}

func (s appSpec) instances() int {
	if s.Instances == nil {
		return 1
	}
	return *s.Instances
}

func (s appSpec) hasHealthChecks() bool { return len(s.HealthChecks) > 0 }

// upgradeBounds are Marathon's bounds on a replacement: at least
// minHealthy tasks ready, at most maxCapacity tasks at once (those being
// killed included, which keeps a fixed address free for the new task).
func (s appSpec) upgradeBounds() (minHealthy, maxCapacity int) {
	minHC, maxOC := 1.0, 1.0
	if u := s.UpgradeStrategy; u != nil {
		if u.MinimumHealthCapacity != nil {
			minHC = *u.MinimumHealthCapacity
		}
		if u.MaximumOverCapacity != nil {
			maxOC = *u.MaximumOverCapacity
		}
	}
	n := float64(s.instances())
	return int(math.Ceil(n * minHC)), int(math.Floor(n * (1 + maxOC)))
}

// fixedIP is the value of the Docker parameter "ip" (docker run --ip), if any.
func (s appSpec) fixedIP() string {
	if s.Container == nil || s.Container.Docker == nil {
		return ""
	}
	for _, p := range s.Container.Docker.Parameters {
		if p.Key == "ip" {
			return p.Value
		}
	}
	return ""
}

// task is one Marathon task; it marshals as Marathon's task JSON (§2.1).
type task struct {
	ID                 string         `json:"id"`
	SlaveID            string         `json:"slaveId"`
	Host               string         `json:"host"`
	State              string         `json:"state"`
	StartedAt          string         `json:"startedAt,omitempty"`
	StagedAt           string         `json:"stagedAt,omitempty"`
	Ports              []int          `json:"ports"`
	Version            string         `json:"version,omitempty"`
	IPAddresses        []ipAddress    `json:"ipAddresses,omitempty"`
	AppID              string         `json:"appId"`
	ServicePorts       []int          `json:"servicePorts,omitempty"`
	HealthCheckResults []healthResult `json:"healthCheckResults,omitempty"`

	removed  bool          // no longer in Server.tasks; lifecycle goroutines stop
	stop     chan struct{} // docker mode: closed when the task's container must go
	leased   netip.Addr    // address taken from TaskCIDR, released on removal
	checkRun int           // bumped by every SetTaskHealth; ends older check loops
}

type ipAddress struct {
	IPAddress string `json:"ipAddress"`
	Protocol  string `json:"protocol"`
}

type healthResult struct {
	Alive               bool    `json:"alive"`
	ConsecutiveFailures int     `json:"consecutiveFailures"`
	FirstSuccess        *string `json:"firstSuccess"`
	LastFailure         *string `json:"lastFailure"`
	LastSuccess         *string `json:"lastSuccess"`
	LastFailureCause    *string `json:"lastFailureCause"`
	InstanceID          string  `json:"instanceId,omitempty"`
	TaskID              string  `json:"taskId,omitempty"`
}

type lastTaskFailure struct {
	AppID     string `json:"appId"`
	Host      string `json:"host"`
	Message   string `json:"message"`
	State     string `json:"state"`
	TaskID    string `json:"taskId"`
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
	SlaveID   string `json:"slaveId"`
}

// Task states used by the simulator.
const (
	stateStaging = "TASK_STAGING"
	stateRunning = "TASK_RUNNING"
	stateKilling = "TASK_KILLING"
	stateKilled  = "TASK_KILLED"
	stateFailed  = "TASK_FAILED"
)

// ready reports whether t counts as up for a deployment: running and, when
// the app has health checks, with all results alive.
func (t *task) ready(withHealth bool) bool {
	if t.State != stateRunning {
		return false
	}
	if !withHealth {
		return true
	}
	if len(t.HealthCheckResults) == 0 {
		return false
	}
	for _, h := range t.HealthCheckResults {
		if !h.Alive {
			return false
		}
	}
	return true
}

// instanceID is the Marathon 1.4 instance id of a legacy task id
// ("app.uuid" -> "app.marathon-uuid").
func instanceID(taskID string) string {
	i := strings.LastIndexByte(taskID, '.')
	if i < 0 {
		return taskID
	}
	return taskID[:i] + ".marathon-" + taskID[i+1:]
}

// newTaskID returns "<app path without leading '/', '/'->'_'>.<uuid>".
func newTaskID(appID string) string {
	return strings.ReplaceAll(strings.TrimPrefix(appID, "/"), "/", "_") + "." + newUUID()
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// timestamp formats t as Marathon does: ISO-8601 UTC with milliseconds.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// appIDPattern is Marathon's rule for one path segment of an app id.
var appIDPattern = regexp.MustCompile(`^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$`)

// normalizeID makes id absolute and clean ("web" -> "/web", "/a//b/" -> "/a/b").
func normalizeID(id string) string {
	parts := strings.Split(id, "/")
	kept := parts[:0]
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return "/" + strings.Join(kept, "/")
}

// validID reports whether a normalized id is a valid app id.
func validID(id string) bool {
	if id == "/" {
		return false
	}
	for _, seg := range strings.Split(strings.TrimPrefix(id, "/"), "/") {
		if !appIDPattern.MatchString(seg) {
			return false
		}
	}
	return true
}

// parentGroup is the id of the group holding app id.
func parentGroup(id string) string {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 {
		return "/"
	}
	return id[:i]
}

// groupApp is one app of a group tree: its id and its definition JSON.
type groupApp struct {
	id   string
	json json.RawMessage
}

// groupNode is one group of a tree being rendered.
type groupNode struct {
	id     string
	apps   []json.RawMessage
	groups []*groupNode
}

// groupTree renders apps, sorted by id, as Marathon's root group with the
// given version on every group. The apps' JSON is copied as it is, not
// re-encoded: a plan of 10,000 apps is mostly these bytes.
func groupTree(apps []groupApp, version string) json.RawMessage {
	root := &groupNode{id: "/"}
	groups := map[string]*groupNode{"/": root}
	var ensure func(id string) *groupNode
	ensure = func(id string) *groupNode {
		if g, ok := groups[id]; ok {
			return g
		}
		g := &groupNode{id: id}
		groups[id] = g
		parent := ensure(parentGroup(id))
		parent.groups = append(parent.groups, g)
		return g
	}
	size := 0
	for _, a := range apps {
		g := ensure(parentGroup(a.id))
		g.apps = append(g.apps, a.json)
		size += len(a.json) + 1
	}
	versionJSON, _ := json.Marshal(version)
	out := make([]byte, 0, size+len(groups)*(len(versionJSON)+80))
	return appendGroup(out, root, versionJSON)
}

// appendGroup appends g as a group of a deployment plan, with the keys
// encoding/json would write for {id, apps, groups, pods, dependencies,
// version}.
func appendGroup(out []byte, g *groupNode, versionJSON []byte) []byte {
	id, _ := json.Marshal(g.id)
	out = append(out, `{"id":`...)
	out = append(out, id...)
	out = append(out, `,"apps":[`...)
	for i, a := range g.apps {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, a...)
	}
	out = append(out, `],"groups":[`...)
	for i, sub := range g.groups {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendGroup(out, sub, versionJSON)
	}
	out = append(out, `],"pods":[],"dependencies":[],"version":`...)
	out = append(out, versionJSON...)
	return append(out, '}')
}

func parseTimestamp(s string) (time.Time, error) {
	return time.Parse("2006-01-02T15:04:05.000Z", s)
}
