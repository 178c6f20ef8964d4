package cli

import (
	"io"
	"strings"
	"testing"
)

func TestDemoServerCmdRejectsBadArgs(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "exactly one server name"},
		{[]string{"crm", "chat"}, "exactly one server name"},
		{[]string{"billing"}, `unknown demo server "billing"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := newDemoServerCmd()
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SilenceUsage = true
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Execute(%q) error = %v, want it to contain %q", tt.args, err, tt.want)
			}
		})
	}
}
