package catalog

// App is one Marathon application as the catalog reads it: the few fields
// oak uses, converted at the edge (the watcher) from whatever decoded the
// Marathon payload. Every string in it is untrusted; the catalog validates
// what it uses and never keeps an App.
type App struct {
	ID           string
	Version      string            // Marathon's version of the app
	ConfigChange string            // versionInfo.lastConfigChangeAt; "" when unknown
	Labels       map[string]string // all labels; oak reads those with its prefix
	Ports        []PortSpec        // portDefinitions, else container.docker.portMappings, in order
	DockerIP     string            // the value of the Docker `ip` parameter; "" when none
	HealthChecks int               // number of health checks defined
	Tasks        []Task
}

// PortSpec is one of an app's declared ports. Number is the port a
// container listens on (portMappings' containerPort, or portDefinitions'
// port); Protocol is Marathon's text, e.g. "tcp" or "udp,tcp".
type PortSpec struct {
	Name     string
	Number   int
	Protocol string
}

// Task is one task of an App.
type Task struct {
	ID     string
	State  string   // e.g. TASK_RUNNING
	Host   string   // the agent's host name or address
	IPs    []string // the task's own addresses (IP per task), untrusted
	Ports  []int    // the host ports Marathon gave the task, by index of App.Ports
	Health []bool   // one result per health check that has reported: alive or not
}
