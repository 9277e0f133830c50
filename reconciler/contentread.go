package reconciler

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// maxReadBytes is the most of one file ReadNodeFiles brings back; a
// larger file is too large to diff anyway (MaxDiffBytes).
const maxReadBytes = plan.MaxDiffBytes

// readEnd follows every file's bytes, so a file that changed size
// between its measuring and its reading is noticed, not misparsed.
const readEnd = "\n--drover-end--\n"

// readFilesScript prints, per path in order, "SIZE\n" then the bytes then
// readEnd for a regular file of at most maxReadBytes, "-\n" otherwise. It
// only reads.
func readFilesScript(paths []string) string {
	var b strings.Builder
	b.WriteString("for p in")
	for _, p := range paths {
		b.WriteString(" " + inventory.Quote(p))
	}
	fmt.Fprintf(&b, `; do
  if [ -f "$p" ] && [ ! -h "$p" ] && n=$(wc -c < "$p") && [ "$n" -le %d ]; then
    printf '%%s\n' $n; head -c $n -- "$p"; printf '%s'
  else
    printf -- '-\n'
  fi
done
`, maxReadBytes, strings.ReplaceAll(readEnd, "\n", `\n`))
	return b.String()
}

// parseReadFiles reads readFilesScript's output back.
func parseReadFiles(paths []string, out []byte) (map[string][]byte, error) {
	got := make(map[string][]byte, len(paths))
	for _, p := range paths {
		line, rest, ok := bytes.Cut(out, []byte("\n"))
		if !ok {
			return got, fmt.Errorf("read %s: output ends early", p)
		}
		out = rest
		if string(line) == "-" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(line)))
		if err != nil || n < 0 || n > len(out) {
			return got, fmt.Errorf("read %s: bad size %q", p, line)
		}
		content := out[:n]
		out = out[n:]
		if !bytes.HasPrefix(out, []byte(readEnd)) {
			return got, fmt.Errorf("read %s: it changed while being read", p)
		}
		out = out[len(readEnd):]
		got[p] = bytes.Clone(content)
	}
	return got, nil
}

// ReadNodeFiles reads the named files from one node in one round trip:
// the current bytes of the files a plan would change, for its diffs.
// Files not there, not regular or too large are left out.
func ReadNodeFiles(ctx context.Context, r inventory.Runner, t inventory.Target, paths []string) (map[string][]byte, error) {
	if len(paths) == 0 {
		return map[string][]byte{}, nil
	}
	res, err := r.Run(ctx, t, readFilesScript(paths), nil)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("read files: exit %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return parseReadFiles(paths, res.Stdout)
}

// PlanWithDiffs is ProbeAndDiff with content diffs: after the probe, one
// extra read per node that has files changed on it (only those files;
// never sensitive ones), then AttachDiffs. A node whose read fails keeps
// its plan; its diffs say the node's copy was not read.
//
// Only nodes are probed (all of d's when nil); the plan's other nodes are
// "not probed yet".
func PlanWithDiffs(ctx context.Context, r inventory.Runner, d *plan.Desired, nodes []*plan.DesiredNode, parallel int) (plan.Plan, map[string]probes.Observed) {
	if nodes == nil {
		nodes = d.Nodes
	}
	obs := ProbeNodes(ctx, r, d, nodes, parallel)
	p := plan.Diff(d, obs)
	req := plan.ContentRequest(d, p, obs, "")
	current := plan.CurrentFiles{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, parallel))
	for node, paths := range req {
		dn := d.Node(node)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			files, err := ReadNodeFiles(ctx, r, dn.Target, paths)
			if err != nil {
				return
			}
			mu.Lock()
			current[node] = files
			mu.Unlock()
		}()
	}
	wg.Wait()
	plan.AttachDiffs(d, &p, obs, current, "")
	return p, obs
}
