package proc

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oakdns/oak/internal/testutil"
)

func TestProc(t *testing.T) {
	sh := testutil.RequireTool(t, "sh")
	for _, tc := range []struct {
		name       string
		script     string
		pgid       bool
		wantOutput string
	}{
		{"ends on SIGINT", `trap 'echo bye; exit 0' INT; echo hi; while :; do sleep 0.01; done`, false, "hi\nbye\n"},
		{"ignores SIGINT: killed", `trap '' INT; echo hi; while :; do sleep 0.01; done`, false, "hi\n"},
		{"ignores SIGINT, own group: group killed", `trap '' INT; echo hi; while :; do sleep 0.01; done`, true, "hi\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out Output
			cmd := exec.Command(sh, "-c", tc.script)
			cmd.Stdout = &out
			if tc.pgid {
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			}
			p, err := Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			for !strings.Contains(out.String(), "hi") {
				if exited, err := p.Exited(); exited {
					t.Fatalf("exited early: %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			p.Stop(300 * time.Millisecond)
			if exited, _ := p.Exited(); !exited {
				t.Fatal("still running after Stop")
			}
			if got := out.String(); got != tc.wantOutput {
				t.Errorf("output %q, want %q", got, tc.wantOutput)
			}
		})
	}
}
