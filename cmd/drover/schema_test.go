package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/metrics"
)

// TestPrintCommands: schema, rules and dashboard print what the packages
// ship, and exit 0.
func TestPrintCommands(t *testing.T) {
	schema, err := manifests.Schema()
	if err != nil {
		t.Fatal(err)
	}
	dashboard, err := metrics.DashboardForImport()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  string
		want []byte
	}{
		{"schema", schema},
		{"rules", metrics.AlertRules},
		{"dashboard", dashboard},
	} {
		code, out, errOut := runDrover(t, tc.cmd)
		if code != 0 || errOut != "" {
			t.Errorf("%s: exit %d, %s", tc.cmd, code, errOut)
		}
		if !bytes.Equal([]byte(out), tc.want) {
			t.Errorf("%s: output is not what the package ships", tc.cmd)
		}
		if tc.cmd != "rules" && !json.Valid([]byte(out)) {
			t.Errorf("%s: not JSON", tc.cmd)
		}
	}
}
