package chain

import (
	"testing"

	"github.com/drover-project/drover/inventory"
)

// TestSplitChainCutOff: a batch cut off under a step reports the steps
// that ended, and gives the rest to the step it ended in.
func TestSplitChainCutOff(t *testing.T) {
	const m = "0123456789abcdef"
	res := inventory.Result{
		Stdout:   []byte("changed\n\n" + m + " 0 100.00 100.25\npart"),
		Stderr:   []byte("warn\n" + m + " 0\nkilled"),
		ExitCode: 137,
	}
	reports, rest := Split(res, m)
	if len(reports) != 1 || string(reports[0].Res.Stdout) != "changed\n" || string(reports[0].Res.Stderr) != "warn" || reports[0].Took.Milliseconds() != 250 {
		t.Errorf("reports = %+v", reports)
	}
	if string(rest.Stdout) != "part" || string(rest.Stderr) != "killed" || rest.ExitCode != 137 {
		t.Errorf("rest = %+v", rest)
	}
}
