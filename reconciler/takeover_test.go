package reconciler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/drover-project/drover/inventory"
	"github.com/drover-project/drover/probes"
	"github.com/drover-project/drover/reconciler/plan"
)

// inflightRunner answers the in-flight query of takeoverScan from a
// table: per node, its output, or an error (the node does not answer).
type inflightRunner struct {
	out  map[string]string
	errs map[string]error
	ran  []string
}

func (r *inflightRunner) Run(_ context.Context, t inventory.Target, script string, _ io.Reader) (inventory.Result, error) {
	r.ran = append(r.ran, t.Address)
	if err := r.errs[t.Address]; err != nil {
		return inventory.Result{}, err
	}
	if !strings.Contains(script, "in flight") {
		return inventory.Result{ExitCode: 1}, fmt.Errorf("unexpected script %q", script)
	}
	return inventory.Result{Stdout: []byte(r.out[t.Address])}, nil
}

func (r *inflightRunner) DialTCP(context.Context, inventory.Target, string) (net.Conn, error) {
	return nil, errors.New("no dialing here")
}

// takeoverDesired is nodes n1..nN with one component, app.
func takeoverDesired(n int) *plan.Desired {
	d := &plan.Desired{InstallRoot: "/opt/drover"}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("n%d", i)
		d.Nodes = append(d.Nodes, &plan.DesiredNode{Name: name, Target: inventory.Target{Address: name},
			Components: []*plan.DesiredComponent{{Name: "app", Version: "1.0"}}})
	}
	return d
}

func takeoverController(r inventory.Runner, fence bool, now time.Time) *Controller {
	c := &Controller{ControllerOptions: ControllerOptions{Runner: r, Log: zap.NewNop(), ReconcileTimeout: time.Second, Now: func() time.Time { return now }},
		nodes: map[string]*nodeTrack{}, inflight: map[string]plan.Action{}}
	if fence {
		c.Fence = &testFence{}
	}
	return c
}

var takeoverNow = time.Unix(1_800_000_000, 0)

// What takeoverScan makes of each answer a node gives about a former
// leader's in-flight record.
func TestTakeoverScan(t *testing.T) {
	future := takeoverNow.Add(time.Minute).Unix()
	past := takeoverNow.Add(-time.Minute).Unix()
	for _, c := range []struct {
		name                   string
		out                    string
		err                    error
		fence                  bool
		wantScanned, wantTried bool
		wantForeign            bool
	}{
		{"no record: an ordinary node", "", nil, true, true, true, false},
		{"a record whose deadline is ahead: counts", fmt.Sprintf("%d %d\n", past, future), nil, true, true, true, true},
		{"a record past its deadline: the action has ended on the node", fmt.Sprintf("%d %d\n", past-60, past), nil, true, true, true, false},
		{"a garbled record counts as none", "garbage\n", nil, true, true, true, false},
		{"the node does not answer: tried, read again next pass", "", inventory.ErrUnreachable, true, false, true, false},
		{"a lone daemon (no fence) reads nothing", fmt.Sprintf("%d %d\n", past, future), nil, false, false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &inflightRunner{out: map[string]string{"n1": c.out}, errs: map[string]error{"n1": c.err}}
			ctl := takeoverController(r, c.fence, takeoverNow)
			d := takeoverDesired(1)
			ctl.nodes["n1"] = &nodeTrack{}
			ctl.takeoverScan(context.Background(), d, d.Nodes[0])
			st := ctl.nodes["n1"]
			if st.scanned != c.wantScanned || st.scanTried != c.wantTried || (st.foreign != nil) != c.wantForeign {
				t.Fatalf("scanned %v tried %v foreign %+v, want %v %v %v", st.scanned, st.scanTried, st.foreign, c.wantScanned, c.wantTried, c.wantForeign)
			}
			if c.wantForeign && !st.foreign.deadline.Equal(time.Unix(future, 0)) {
				t.Errorf("deadline %s, want %s", st.foreign.deadline, time.Unix(future, 0))
			}
			if !c.fence && len(r.ran) != 0 {
				t.Errorf("a lone daemon ran %d queries", len(r.ran))
			}
			// Read once per controller: a second scan asks nothing.
			if c.wantScanned {
				n := len(r.ran)
				ctl.takeoverScan(context.Background(), d, d.Nodes[0])
				if len(r.ran) != n {
					t.Errorf("a scanned node was read again")
				}
			}
		})
	}
}

// healthyObs is a probe that saw app installed and healthy.
func healthyObs() probes.Observed {
	return probes.Observed{Known: true, Components: map[string]*probes.Component{
		"app": {Name: "app", Receipt: &probes.Receipt{Version: "1.0"}, Active: "1.0", Health: probes.HealthResult{Checked: true, OK: true}},
	}}
}

// Which nodes a former leader's action still counts on, and how.
func TestForeignActionsCount(t *testing.T) {
	deadline := takeoverNow.Add(time.Minute)
	for _, c := range []struct {
		name  string
		track nodeTrack
		own   bool // this controller runs an action there itself
		want  int  // actions counted for the node
		kept  bool // the foreign record is kept for the next pass
	}{
		{"not probed yet: counts, disruptive and quiet", nodeTrack{foreign: &foreignAction{deadline: deadline}}, false, 2, true},
		{"probed, not up yet (no receipt): counts", nodeTrack{probed: true, obs: probes.Observed{Known: true, Components: map[string]*probes.Component{}}, foreign: &foreignAction{deadline: deadline}}, false, 2, true},
		{"probed unknown (unreachable): counts", nodeTrack{probed: true, obs: probes.Observed{Known: false}, foreign: &foreignAction{deadline: deadline}}, false, 2, true},
		{"healthy again: forgotten", nodeTrack{probed: true, obs: healthyObs(), foreign: &foreignAction{deadline: deadline}}, false, 0, false},
		{"deadline passed: forgotten", nodeTrack{foreign: &foreignAction{deadline: takeoverNow.Add(-time.Second)}}, false, 0, false},
		{"this controller acts there now: its own action counts instead", nodeTrack{foreign: &foreignAction{deadline: deadline}}, true, 0, true},
		{"no record", nodeTrack{}, false, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctl := takeoverController(&inflightRunner{}, true, takeoverNow)
			d := takeoverDesired(1)
			track := c.track
			ctl.nodes["n1"] = &track
			if c.own {
				ctl.inflight["n1"] = plan.Action{Node: "n1", Component: "app", Kind: plan.ActionUpgrade}
			}
			got := ctl.foreignLocked(d)
			if len(got) != c.want {
				t.Fatalf("counted %d actions, want %d: %+v", len(got), c.want, got)
			}
			if c.want == 2 && got[0].Disruptive == got[1].Disruptive {
				t.Errorf("want one disruptive and one quiet action: %+v", got)
			}
			for _, a := range got {
				if a.Node != "n1" || a.Component != "app" {
					t.Errorf("counted %+v", a)
				}
			}
			if (track.foreign != nil) != c.kept {
				t.Errorf("foreign record kept %v, want %v", track.foreign != nil, c.kept)
			}
		})
	}
}

// No action is admitted anywhere until every node was read (or tried).
func TestScanPendingUntilEveryNodeRead(t *testing.T) {
	d := takeoverDesired(3)
	for _, c := range []struct {
		name  string
		fence bool
		tried []string
		want  string
	}{
		{"a lone daemon never waits", false, nil, ""},
		{"none read", true, nil, "waiting to read on 3 more nodes"},
		{"one left", true, []string{"n1", "n3"}, "waiting to read on 1 more nodes"},
		{"all read or tried", true, []string{"n1", "n2", "n3"}, ""},
	} {
		ctl := takeoverController(&inflightRunner{}, c.fence, takeoverNow)
		for _, n := range d.Nodes {
			ctl.nodes[n.Name] = &nodeTrack{}
		}
		for _, n := range c.tried {
			ctl.nodes[n].scanTried = true
		}
		got := ctl.scanPendingLocked(d)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
