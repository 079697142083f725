package watcher

import (
	"hash/maphash"
	"reflect"
	"strings"
	"testing"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/oakdns/oak/catalog"
)

// fingerprintBase is an element as Marathon lists it, with fields oak reads
// and fields it does not.
const fingerprintBase = `{"id":"/web","cpus":0.1,"version":"v1","versionInfo":{"lastConfigChangeAt":"v1"},` +
	`"labels":{"OAK_NAMES":"web.example.com"},"healthChecks":[{"protocol":"TCP"}],"tasksRunning":1,` +
	`"portDefinitions":[{"port":80,"name":"http"}],"container":{"docker":{"parameters":[{"key":"ip","value":"10.0.0.9"}]}},` +
	`"deployments":[],"tasks":[{"id":"web.1","host":"h1","state":"TASK_RUNNING","ports":[31000],"startedAt":"t1",` +
	`"ipAddresses":[{"ipAddress":"10.1.0.1","protocol":"IPv4"}],"healthCheckResults":[{"alive":true,"lastSuccess":"t1"}]}]}`

func TestFingerprint(t *testing.T) {
	tests := []struct {
		name      string
		old, new  string // replaced in fingerprintBase
		same      bool   // the fingerprint stays
		unprinted bool   // no fingerprint
	}{
		{name: "unread app field", old: `"tasksRunning":1`, new: `"tasksRunning":2`, same: true},
		{name: "unread task field", old: `"startedAt":"t1"`, new: `"startedAt":"t2"`, same: true},
		{name: "health timestamp", old: `"lastSuccess":"t1"`, new: `"lastSuccess":"t2"`, same: true},
		{name: "deployments", old: `"deployments":[]`, new: `"deployments":[{"id":"d"}]`, same: true},
		{name: "name case", old: `"id":"/web"`, new: `"ID":"/web"`, same: true},
		{name: "id", old: `"id":"/web"`, new: `"id":"/web2"`},
		{name: "version", old: `"version":"v1"`, new: `"version":"v2"`},
		{name: "config change", old: `"lastConfigChangeAt":"v1"`, new: `"lastConfigChangeAt":"v2"`},
		{name: "label", old: `web.example.com`, new: `www.example.com`},
		{name: "health check", old: `"protocol":"TCP"`, new: `"protocol":"HTTP"`},
		{name: "port", old: `"port":80`, new: `"port":81`},
		{name: "docker ip", old: `10.0.0.9`, new: `10.0.0.8`},
		{name: "task id", old: `"id":"web.1"`, new: `"id":"web.2"`},
		{name: "task host", old: `"host":"h1"`, new: `"host":"h2"`},
		{name: "task state", old: `TASK_RUNNING`, new: `TASK_KILLED`},
		{name: "task ports", old: `[31000]`, new: `[31001]`},
		{name: "task ip", old: `10.1.0.1`, new: `10.1.0.2`},
		{name: "alive", old: `"alive":true`, new: `"alive":false`},
		{name: "repeated labels", old: `"deployments":[]`, new: `"labels":null`},
		{name: "no tasks", old: `"tasks":[`, new: `"tasks":null,"x":[`},
		{name: "task ports spelled apart", old: `"ports":[31000]`, new: `"ports" : [ 31000 ]`, same: true},
		{name: "task fields reordered", old: `"id":"web.1","host":"h1"`, new: `"host":"h1","id":"web.1"`, same: true},
		{name: "unread ip field", old: `"protocol":"IPv4"`, new: `"protocol":"IPv6"`, same: true},
		{name: "task name case", old: `"ipAddresses"`, new: `"IPADDRESSES"`, same: true},
		{name: "ip without address", old: `{"ipAddress":"10.1.0.1","protocol":"IPv4"}`, new: `{"protocol":"IPv4"}`},
		{name: "health without alive", old: `"alive":true,`, new: ``},
		{name: "second task", old: `}]}]}`, new: `}]},{"id":"web.2"}]}`},
		{name: "escaped task id", old: `"id":"web.1"`, new: `"id":"web\u002e1"`, unprinted: true},
		{name: "non-ASCII host", old: `"host":"h1"`, new: `"host":"hé1"`, unprinted: true},
		{name: "repeated task field", old: `"host":"h1"`, new: `"host":"h1","HOST":"h1"`, unprinted: true},
		{name: "repeated tasks", old: `"deployments":[]`, new: `"tasks":[]`, unprinted: true},
		{name: "null task", old: `"tasks":[`, new: `"tasks":[null,`, unprinted: true},
		{name: "null task id", old: `"id":"web.1"`, new: `"id":null`, unprinted: true},
		{name: "numeric task id", old: `"id":"web.1"`, new: `"id":1`, unprinted: true},
		{name: "port with a fraction", old: `[31000]`, new: `[31000.0]`, unprinted: true},
		{name: "port with an exponent", old: `[31000]`, new: `[3.1e4]`, unprinted: true},
		{name: "port as a string", old: `[31000]`, new: `["31000"]`, unprinted: true},
		{name: "nine-digit port", old: `[31000]`, new: `[-123456789]`},
		{name: "ten-digit port", old: `[31000]`, new: `[1234567890]`, unprinted: true},
		{name: "null alive", old: `"alive":true`, new: `"alive":null`, unprinted: true},
		{name: "null ip", old: `"ipAddresses":[`, new: `"ipAddresses":[null,`, unprinted: true},
		{name: "ip as a string", old: `{"ipAddress":"10.1.0.1","protocol":"IPv4"}`, new: `"10.1.0.1"`, unprinted: true},
		{name: "escaped name", old: `"id":"/web"`, new: `"i\u0064":"/web"`, unprinted: true},
		{name: "delimited name", old: `"tasksRunning"`, new: `"tasks_running"`, unprinted: true},
		{name: "odd task name", old: `"startedAt"`, new: `"started-at"`, unprinted: true},
	}
	f := newFingerprinter(maphash.MakeSeed())
	base, ok := f.sum([]byte(fingerprintBase))
	if !ok {
		t.Fatal("the base element has no fingerprint")
	}
	checkTasksPrint(t, f, base, fingerprintBase)
	if again, _ := f.sum([]byte(fingerprintBase)); again != base {
		t.Fatal("the fingerprint of the same bytes changed")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			element := strings.Replace(fingerprintBase, tt.old, tt.new, 1)
			if element == fingerprintBase {
				t.Fatalf("%q is not in the base element", tt.old)
			}
			got, ok := f.sum([]byte(element))
			switch {
			case ok == tt.unprinted:
				t.Fatalf("printed %v, want %v", ok, !tt.unprinted)
			case ok && (got == base) != tt.same:
				t.Errorf("same fingerprint %v, want %v", got == base, tt.same)
			}
			if tt.same && !reflect.DeepEqual(decodeElement(t, element), decodeElement(t, fingerprintBase)) {
				t.Error("same fingerprint, different apps")
			}
			if ok {
				checkTasksPrint(t, f, got, element)
			}
		})
	}
	for _, other := range []string{`null`, `[]`, `{"id":"/a"`} {
		if _, ok := f.sum([]byte(other)); ok {
			t.Errorf("%s has a fingerprint", other)
		}
	}
}

// checkTasksPrint fails unless the fingerprint of element is also the one
// made from its app part and its decoded tasks, as printIndex.retask makes
// it for an app whose tasks events changed.
func checkTasksPrint(t testing.TB, f *fingerprinter, got elementPrint, element string) {
	t.Helper()
	if made := f.whole(got.app, f.tasksPrint(decodeElement(t, element).Tasks)); made != got.whole {
		t.Errorf("fingerprint %x; made from the decoded tasks %x", got.whole, made)
	}
}

func decodeElement(t testing.TB, element string) catalog.App {
	t.Helper()
	var lean leanApp
	if err := jsonv1.Unmarshal([]byte(element), &lean); err != nil {
		t.Fatal(err)
	}
	return lean.app()
}

// FuzzFingerprint: two elements with the same fingerprint decode to the
// same app, and an element's fingerprint is the one made from its decoded
// tasks.
func FuzzFingerprint(f *testing.F) {
	f.Add([]byte(fingerprintBase), []byte(strings.Replace(fingerprintBase, `"lastSuccess":"t1"`, `"lastSuccess":"t2"`, 1)))
	f.Add([]byte(fingerprintBase), []byte(strings.Replace(fingerprintBase, `"alive":true`, `"alive":false`, 1)))
	f.Add([]byte(`{"id":"/a","tasks":[null,{"ID":"x"}]}`), []byte(`{"Id":"/a","tasks":[null,{"id":"x"}],"x":1}`))
	f.Add([]byte(`{"id":"/a","tasks":[{"id":"x","ports":[1,-2]}]}`), []byte(`{"id":"/a","tasks":[{"ports":[1,-2],"ID":"x","y":{}}]}`))
	f.Add([]byte(`{"id":"/a","tasks":[{"ipAddresses":[{}],"healthCheckResults":[{"alive":false}]}]}`), []byte(`{"id":"/a","tasks":[{"ipAddresses":[{"ipAddress":""}],"healthCheckResults":[{}]}]}`))
	printer := newFingerprinter(maphash.MakeSeed())
	f.Fuzz(func(t *testing.T, a, b []byte) {
		pa, okA := printer.sum(a)
		pb, okB := printer.sum(b)
		var lean leanApp
		if okA && jsonv1.Unmarshal(a, &lean) == nil {
			checkTasksPrint(t, printer, pa, string(a))
		}
		if !okA || !okB || pa.whole != pb.whole {
			return
		}
		var leanA, leanB leanApp
		errA := jsonv1.Unmarshal(a, &leanA)
		errB := jsonv1.Unmarshal(b, &leanB)
		if (errA == nil) != (errB == nil) {
			t.Fatalf("same fingerprint, decode errors %v and %v", errA, errB)
		}
		if errA == nil && !reflect.DeepEqual(leanA.app(), leanB.app()) {
			t.Fatalf("same fingerprint, apps\n%+v\n%+v", leanA.app(), leanB.app())
		}
	})
}
