// Package chain reads the output of a step chain: several steps run one
// after another in one SSH session (execute's chainScript writes the
// script), each reporting its exit status and its start and end after a
// random marker on stdout and stderr. The executor and the tests' local
// node both cut a chain's output with Split.
package chain

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/drover-project/drover/inventory"
)

// Report is one step's part of a batch's output.
type Report struct {
	Res  inventory.Result
	Took time.Duration
}

// Split cuts a batch's output into the reports of the steps that
// ended, and what came after the last one (with the session's exit code).
func Split(res inventory.Result, marker string) ([]Report, inventory.Result) {
	sep := "\n" + marker + " "
	outs, tails, restOut := frames(res.Stdout, sep)
	errs, _, restErr := frames(res.Stderr, sep)
	reports := make([]Report, 0, len(outs))
	for i, out := range outs {
		f := strings.Fields(tails[i])
		if len(f) == 0 {
			break
		}
		code, err := strconv.Atoi(f[0])
		if err != nil {
			break
		}
		r := Report{Res: inventory.Result{Stdout: out, ExitCode: code}}
		if i < len(errs) {
			r.Res.Stderr = errs[i]
		}
		if len(f) == 3 {
			// The node's clock ticks in hundredths; without /proc it is 0.
			t0, err0 := strconv.ParseFloat(f[1], 64)
			t1, err1 := strconv.ParseFloat(f[2], 64)
			if err0 == nil && err1 == nil && t1 >= t0 {
				r.Took = time.Duration((t1 - t0) * float64(time.Second))
			}
		}
		reports = append(reports, r)
	}
	return reports, inventory.Result{Stdout: restOut, Stderr: restErr, ExitCode: res.ExitCode}
}

// frames splits b at each sep, returning what came before each, the rest
// of sep's line, and what follows the last whole line.
func frames(b []byte, sep string) (bodies [][]byte, tails []string, rest []byte) {
	for {
		i := bytes.Index(b, []byte(sep))
		if i < 0 {
			return bodies, tails, b
		}
		j := bytes.IndexByte(b[i+len(sep):], '\n')
		if j < 0 {
			return bodies, tails, b
		}
		bodies = append(bodies, b[:i])
		tails = append(tails, string(b[i+len(sep):i+len(sep)+j]))
		b = b[i+len(sep)+j+1:]
	}
}
