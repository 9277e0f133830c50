package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/ha"
)

// fakeGenerations is etcd's record of acted generations in memory, with
// ha.Judge for the rule, and a switch to make every request fail.
type fakeGenerations struct {
	current   *ha.Generation
	acted     map[string]bool
	published []string // every successful Publish that changed the generation
	down      bool
}

var errEtcdDown = errors.New("etcd: context deadline exceeded")

func newFakeGenerations(history ...string) *fakeGenerations {
	f := &fakeGenerations{acted: map[string]bool{}}
	for i, h := range history {
		f.acted[h] = true
		f.current = &ha.Generation{Hash: h, Seq: int64(i + 1), By: "d1", Revision: int64(10 * (i + 1))}
	}
	return f
}

func (f *fakeGenerations) Standing(_ context.Context, hash string) (ha.Standing, *ha.Generation, error) {
	if f.down {
		return 0, nil, errEtcdDown
	}
	return ha.Judge(hash, f.current, f.acted[hash]), f.current, nil
}

func (f *fakeGenerations) Acted(context.Context) (*ha.Generation, error) {
	if f.down {
		return nil, errEtcdDown
	}
	return f.current, nil
}

func (f *fakeGenerations) Publish(_ context.Context, hash string) (*ha.Generation, error) {
	if f.down {
		return nil, errEtcdDown
	}
	if f.current != nil && f.current.Hash == hash {
		return f.current, nil
	}
	next := &ha.Generation{Hash: hash, Seq: 1, By: "me", Revision: 100}
	if f.current != nil {
		next.Seq, next.Revision = f.current.Seq+1, f.current.Revision+1
	}
	f.current, f.acted[hash] = next, true
	f.published = append(f.published, hash)
	return next, nil
}

// step is one event of a daemon's life in an agreement test.
type step struct {
	op   string // "lead", "adopt" (a manifest put in force), "retry" (the watch loop), "own" (a standby's file), "down", "up"
	hash string
}

// TestAgreement plays a daemon's manifest loads against the acted
// generations in etcd and checks, after the last step, whether it may
// act, what it published, what it shows, and that the controller never
// got a manifest while the fence was open for one not yet published.
func TestAgreement(t *testing.T) {
	for _, c := range []struct {
		name      string
		history   []string // hashes acted on in order; the last is current
		steps     []step
		mayAct    bool
		published []string
		stale     bool
		mismatch  bool
		why       string // part of the refusal
	}{
		{name: "first leader of a new cluster publishes and acts",
			steps: []step{{"lead", ""}, {"adopt", "h1"}}, mayAct: true, published: []string{"h1"}},
		{name: "takeover on the generation acted on",
			history: []string{"h1", "h2"}, steps: []step{{"lead", ""}, {"adopt", "h2"}}, mayAct: true},
		{name: "takeover with a file acted on before and superseded: refuses",
			history: []string{"h1", "h2"}, steps: []step{{"lead", ""}, {"adopt", "h1"}, {"retry", ""}},
			stale: true, mismatch: true, why: "superseded by generation 2 (h2, published by d1 at etcd revision 20)"},
		{name: "takeover with a file never acted on: the next edit, acts",
			history: []string{"h1", "h2"}, steps: []step{{"lead", ""}, {"adopt", "h3"}}, mayAct: true, published: []string{"h3"}},
		{name: "a stale leader acts once its file catches up",
			history: []string{"h1", "h2"}, steps: []step{{"lead", ""}, {"adopt", "h1"}, {"adopt", "h2"}}, mayAct: true},
		{name: "a stale leader's file moves to another stale one: still refuses",
			history: []string{"h1", "h2", "h3"}, steps: []step{{"lead", ""}, {"adopt", "h1"}, {"adopt", "h2"}},
			stale: true, mismatch: true, why: "superseded by generation 3"},
		{name: "a leader that published follows its own edits, a revert to older bytes too",
			history: []string{"h1"}, steps: []step{{"lead", ""}, {"adopt", "h1"}, {"adopt", "h2"}, {"adopt", "h1"}},
			mayAct: true, published: []string{"h2", "h1"}},
		{name: "etcd away at takeover: acts on nothing, then publishes once it answers",
			history: []string{"h1"}, steps: []step{{"lead", ""}, {"down", ""}, {"adopt", "h2"}, {"retry", ""}},
			why: "cannot check the manifest's generation in etcd"},
		{name: "etcd back: the retry publishes",
			history: []string{"h1"}, steps: []step{{"lead", ""}, {"down", ""}, {"adopt", "h2"}, {"up", ""}, {"retry", ""}},
			mayAct: true, published: []string{"h2"}},
		{name: "an edit that cannot be published is not acted on",
			history: []string{"h1"}, steps: []step{{"lead", ""}, {"adopt", "h1"}, {"down", ""}, {"adopt", "h2"}},
			mismatch: true, why: "cannot publish the manifest's generation (h2)"},
		{name: "...and is once etcd answers, even a revert (the leader follows its file)",
			history: []string{"h1", "h2"}, steps: []step{{"lead", ""}, {"adopt", "h2"}, {"down", ""}, {"adopt", "h1"}, {"up", ""}, {"retry", ""}},
			mayAct: true, published: []string{"h1"}},
		{name: "a standby with the acted file: no mismatch",
			history: []string{"h1", "h2"}, steps: []step{{"own", "h2"}, {"retry", ""}}, why: "not agreed"},
		{name: "a standby with another file: mismatch",
			history: []string{"h1", "h2"}, steps: []step{{"own", "h1"}, {"retry", ""}}, mismatch: true, why: "not agreed"},
		{name: "a standby whose file catches up: no mismatch",
			history: []string{"h1", "h2"}, steps: []step{{"own", "h1"}, {"retry", ""}, {"own", "h2"}}, why: "not agreed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeGenerations(c.history...)
			before := len(f.published)
			a := &agreement{store: f}
			// A standby never leads: its MayAct is the fence's to close.
			a.why = "not agreed: standby"
			for _, s := range c.steps {
				switch s.op {
				case "lead":
					a.lead(f)
				case "adopt":
					a.adopt(context.Background(), s.hash, func() {
						// The controller gets the manifest: the fence must be
						// closed unless this hash is the published one.
						if err := a.MayAct(); err == nil && (f.current == nil || f.current.Hash != s.hash) {
							t.Errorf("adopt %s: the fence was open for it before it was published", s.hash)
						}
					})
				case "retry":
					a.retry(context.Background())
				case "own":
					a.setOwn(s.hash)
				case "down":
					f.down = true
				case "up":
					f.down = false
				}
			}
			err := a.MayAct()
			if (err == nil) != c.mayAct {
				t.Errorf("MayAct = %v, want may act %v", err, c.mayAct)
			}
			if err != nil && !errors.Is(err, errNotAgreed) {
				t.Errorf("MayAct = %v, want errNotAgreed", err)
			}
			if c.why != "" && (err == nil || !strings.Contains(err.Error(), c.why)) {
				t.Errorf("MayAct = %v, want it to say %q", err, c.why)
			}
			if got := f.published[before:]; !slices.Equal(got, c.published) {
				t.Errorf("published %q, want %q", got, c.published)
			}
			v := a.view()
			if v.Stale != c.stale || v.Mismatch != c.mismatch {
				t.Errorf("view stale %v mismatch %v, want %v %v (%+v)", v.Stale, v.Mismatch, c.stale, c.mismatch, v)
			}
		})
	}
}

func TestHAWhy(t *testing.T) {
	lost := errors.New("fenced: lease not renewed since 10:00:00 (etcd unreachable or without quorum)")
	for _, c := range []struct {
		name      string
		term      bool
		lost      error
		notAgreed string
		leader    string
		etcdErr   error
		want      string
	}{
		{"a leader that may act", true, nil, "", "d1", nil, ""},
		{"a leader whose lease is lost", true, lost, "", "d1", nil, "fenced, this daemon starts no step: fenced: lease not renewed"},
		{"a leader with a stale manifest", true, nil, "this daemon's manifest (h1) is a generation acted on before", "d1", nil, "this daemon's manifest (h1)"},
		{"a standby", false, nil, "", "d1", nil, "standby: d1 leads"},
		{"a standby with no leader", false, nil, "", "", nil, "standby: no daemon leads the cluster now"},
		{"a standby without etcd", false, nil, "", "d1", errEtcdDown, "standby: d1 leads; etcd does not answer: etcd: context deadline exceeded"},
		{"a fenced leader without etcd", true, lost, "", "d1", errEtcdDown, "; etcd does not answer"},
	} {
		got := haWhy(c.term, c.lost, c.notAgreed, c.leader, c.etcdErr)
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("%s: haWhy = %q, want %q", c.name, got, c.want)
		}
	}
}
