package main

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// touchNothing is a Runner that counts what is asked of it and runs nothing.
type touchNothing struct{ calls int }

func (r *touchNothing) Run(context.Context, inventory.Target, string, io.Reader) (inventory.Result, error) {
	r.calls++
	return inventory.Result{}, errors.New("a dry run ran a script")
}

func (r *touchNothing) DialTCP(context.Context, inventory.Target, string) (net.Conn, error) {
	r.calls++
	return nil, errors.New("a dry run dialled")
}

// TestDryRunRecordsEveryStep: apply --dry-run walks the plan through the
// executor, prints each step as "would: …" under its action, and asks
// nothing of the node.
func TestDryRunRecordsEveryStep(t *testing.T) {
	l, err := manifests.Load(refusingManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	d, err := plan.Compile(l)
	if err != nil {
		t.Fatal(err)
	}
	obs := map[string]probes.Observed{}
	for _, n := range d.Nodes {
		obs[n.Name] = probes.Observed{Node: n.Name, Known: true, Components: map[string]*probes.Component{}}
	}
	p := plan.Diff(d, obs)
	r := &touchNothing{}
	var b strings.Builder
	walked, err := dryRun(context.Background(), &b, r, d, p, obs)
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if walked != 2 || r.calls != 0 {
		t.Errorf("walked %d actions (want 2), ran %d scripts (want 0)", walked, r.calls)
	}
	for _, want := range []string{"node n1\n  + install app 1.0.0 (not installed)\n      would: ensure dirs\n", "      would: write files\n      would: switch active\n", "node n2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run does not say %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "would: ") < 4 {
		t.Errorf("only %d steps recorded:\n%s", strings.Count(out, "would: "), out)
	}
	if strings.Contains(out, "would fail") {
		t.Errorf("a step failed:\n%s", out)
	}
}
