package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// goBenchResult is the output of the Go benchmarks (issue 3): the probe
// path measured by `go test -bench`, per node, warm and cold.
type goBenchResult struct {
	Command string
	Lines   []string // the Benchmark... result lines
	CPU     string   // go test's "cpu:" line
	Took    time.Duration
	// Failures quotes each package whose benchmarks failed; the lines of
	// those that passed are kept.
	Failures []string
}

// goBenchmarks are the packages and patterns of the Go benchmarks.
// BenchmarkProbe is the bench's own (probes/probe_bench_test.go); the
// others belong to the probes and inventory packages and measure the
// client side alone against an in-process SSH server: parsing a probe's
// output, and a session on a warm or a cold connection.
var goBenchmarks = []struct{ pkg, pattern string }{
	{"./probes", "^(BenchmarkProbe|BenchmarkParse)$"},
	{"./inventory", "^BenchmarkRun(Warm|Cold)$"},
}

func (b *bench) goBenchPhase(ctx context.Context) error {
	r := &goBenchResult{}
	b.res.GoBench = r
	start := time.Now()
	for _, gb := range goBenchmarks {
		args := []string{"test", "-run", "^$", "-bench", gb.pattern, "-benchtime", b.cfg.goBenchTime, "-count", "1", "-timeout", "30m", gb.pkg}
		cmdline := "go " + strings.Join(args, " ")
		b.logf("%s", cmdline)
		r.Command = joinNonEmpty(r.Command, cmdline, "; ")
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			// One failed sub-benchmark must not hide the others' figures.
			b.logf("%s: %v", cmdline, err)
			r.Failures = append(r.Failures, fmt.Sprintf("%s: %v\n%s", cmdline, err, failureLines(string(out))))
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		found := false
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "cpu:"):
				r.CPU = strings.TrimSpace(strings.TrimPrefix(l, "cpu:"))
			case strings.HasPrefix(l, "Benchmark") && len(strings.Fields(l)) >= 4:
				r.Lines = append(r.Lines, strings.Join(strings.Fields(l), " "))
				found = true
			case strings.Contains(l, "SKIP") || strings.Contains(l, "no test files"):
				b.logf("%s: %s", gb.pkg, l)
			}
		}
		if !found {
			b.logf("%s: no benchmark results (%s)", gb.pkg, clipText(string(out), 500))
		}
	}
	r.Took = time.Since(start)
	return nil
}

// failureLines picks the FAIL and error lines of go test's output.
func failureLines(out string) string {
	var keep []string
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "--- FAIL") {
			keep = append(keep, l)
			if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "    ") {
				keep = append(keep, lines[i+1])
			}
		}
	}
	return clipText(strings.Join(keep, "\n"), 1500)
}

func joinNonEmpty(a, b, sep string) string {
	if a == "" {
		return b
	}
	return a + sep + b
}

// benchLine is one parsed `go test -bench` result line.
type benchLine struct {
	Name    string
	Metrics map[string]string // unit -> value
}

func parseBenchLine(l string) benchLine {
	f := strings.Fields(l)
	bl := benchLine{Metrics: map[string]string{}}
	if len(f) < 2 {
		return bl
	}
	bl.Name = f[0]
	// f[1] is the iteration count; then value unit pairs.
	bl.Metrics["N"] = f[1]
	for i := 2; i+1 < len(f); i += 2 {
		bl.Metrics[f[i+1]] = f[i]
	}
	return bl
}
