package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drover-project/drover/manifests"
)

// quorumGroup is zk placed on members of nodes n1..n5, every member
// synced and healthy; holding lists the non-members that still hold zk
// (they leave), and fresh the members that hold nothing yet (they join).
func quorumGroup(members []string, holding ...string) *waveWorld {
	w := newWaveWorld(*manifests.NewCount(1), nil, nodeNames("n", 5), waveComp{name: "zk", quorum: true, members: members})
	for _, m := range members {
		w.synced(m, "zk")
	}
	for _, n := range holding {
		oc := oldVersion("zk", "2")
		w.obs[n].Components["zk"] = oc
	}
	return w
}

// TestWaveMembership: a quorum group grows and shrinks one member at a
// time, never below a majority of the group the change makes.
func TestWaveMembership(t *testing.T) {
	five := nodeNames("n", 5)
	three := five[:3]
	cases := []struct {
		name  string
		world func() *waveWorld
		st    RolloutState
		// want are the released actions as "node kind membership via members".
		want    []string
		waiting string
	}{
		{name: "3 -> 5: the first new member joins, alone, preJoin on the first member",
			world: func() *waveWorld {
				w := quorumGroup(five)
				w.missing("n4", "zk")
				w.missing("n5", "zk")
				return w
			},
			want:    []string{"n4 install join n1 n1,n2,n3,n4"},
			waiting: "zk: quorum: 1 join waits, one member at a time"},
		{name: "3 -> 5: nothing more while that join is in flight",
			world: func() *waveWorld {
				w := quorumGroup(five)
				w.missing("n4", "zk")
				w.missing("n5", "zk")
				return w
			},
			st:      RolloutState{InFlight: []Action{{Node: "n4", Component: "zk", Kind: ActionInstall, Membership: MemberJoin}}},
			waiting: "zk: quorum: 1 action waits while n4 changes"},
		{name: "3 -> 5: the second joins the group of four",
			world: func() *waveWorld {
				w := quorumGroup(five)
				w.missing("n5", "zk")
				return w
			},
			want: []string{"n5 install join n1 n1,n2,n3,n4,n5"}},
		{name: "a join waits while the healthy members are no majority of the group it makes",
			world: func() *waveWorld {
				w := quorumGroup(five[:4])
				w.missing("n4", "zk")
				w.unknown("n3")
				return w
			},
			waiting: "zk: quorum: join of n4 waits: 2 of the other members are healthy, a group of 4 needs 3"},
		{name: "a group being formed is no join: its members start together",
			world: func() *waveWorld {
				w := quorumGroup(three)
				for _, n := range three {
					w.missing(n, "zk")
				}
				return w
			},
			want: []string{"n1 install   ", "n2 install   ", "n3 install   "}},
		{name: "a founding member after the first is no join: the group is being formed",
			world: func() *waveWorld {
				w := quorumGroup(three)
				w.missing("n2", "zk")
				w.missing("n3", "zk")
				return w
			},
			want: []string{"n2 install   ", "n3 install   "}},
		{name: "the last founder, once a majority runs, joins (its preJoin finds it listed)",
			world: func() *waveWorld {
				w := quorumGroup(three)
				w.missing("n3", "zk")
				return w
			},
			want: []string{"n3 install join n1 n1,n2,n3"}},
		{name: "nothing fresh starts until every member is probed",
			world: func() *waveWorld {
				w := quorumGroup(five)
				w.missing("n4", "zk")
				delete(w.obs, "n5")
				return w
			},
			waiting: "zk: quorum: 1 action waits until n5 is probed"},
		{name: "5 -> 3: the first leaves, postLeave on the first member that stays",
			world:   func() *waveWorld { return quorumGroup(three, "n4", "n5") },
			want:    []string{"n4 remove leave n1 n1,n2,n3,n5"},
			waiting: "zk: quorum: 1 leave waits, one member at a time"},
		{name: "5 -> 3: nothing more while that leave is in flight",
			world:   func() *waveWorld { return quorumGroup(three, "n4", "n5") },
			st:      RolloutState{InFlight: []Action{{Node: "n4", Component: "zk", Kind: ActionRemove, Membership: MemberLeave}}},
			waiting: "zk: quorum: 1 leave waits while n4 changes"},
		{name: "a leave waits while the others are no majority of the group it leaves",
			world: func() *waveWorld {
				w := quorumGroup(three, "n4", "n5")
				w.unknown("n2")
				w.unknown("n3")
				return w
			},
			waiting: "zk: quorum: leave of n4 waits: 2 of the other members are healthy, a group of 5 needs 3"},
		{name: "a group of two does not shrink: the one left has no majority of two while the other stops",
			world:   func() *waveWorld { return quorumGroup(five[:1], "n2") },
			waiting: "zk: quorum: leave of n2 waits: 1 of the other members are healthy, a group of 2 needs 2"},
		{name: "state absent dissolves the group: no leaves",
			world: func() *waveWorld {
				w := quorumGroup(three)
				w.d.Components["zk"].Present = false
				w.d.Components["zk"].Members = nil
				for _, n := range three {
					w.d.Node(n).Components = nil
				}
				return w
			},
			want: []string{"n1 remove   "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			got := w.wave(tc.st)
			var rel []string
			for _, a := range got.Actions {
				rel = append(rel, strings.Join([]string{a.Node, string(a.Kind), a.Membership, a.Via, a.Members}, " "))
			}
			if !slices.Equal(rel, tc.want) {
				t.Errorf("released %q, want %q (waiting %q)", rel, tc.want, got.Waiting)
			}
			if tc.waiting != "" && !slices.Contains(got.Waiting, tc.waiting) {
				t.Errorf("waiting %q, want %q", got.Waiting, tc.waiting)
			}
		})
	}
}

const membershipManifest = `
apiVersion: drover/v1
kind: Cluster
metadata: {name: t}
spec:
  nodes:
    - {name: n1, address: 10.0.0.1, roles: [db]}
    - {name: n2, address: 10.0.0.2, roles: [db]}
    - {name: n3, address: 10.0.0.3, roles: [db]}
    - {name: n4, address: 10.0.0.4, roles: [db]}
  components:
    - name: db
      version: "1"
      roles: [db]
      quorum: true
      files:
        - path: conf/initial
          onChange: none
          template: "{{ .Component.Joining }} {{ range .Component.Members }}{{ .Name }} {{ end }}"
      service: {exec: "{{ .Dir }}/db --name={{ .Node.Name }}"}
      hooks:
        preJoin: {command: [add, "on={{ .Node.Address }}", "{{ .Member.Name }}={{ .Member.Address }}", "{{ .Component.Joining }}"]}
        postLeave: {command: [remove, "on={{ .Node.Address }}", "{{ .Member.Name }}", "{{ len .Component.Members }}"]}
`

// TestForMembership: a join renders the joining node's component with
// .Component.Joining and the group it joins, and preJoin on the member
// that stays (.Node) about the node that joins (.Member); a leave
// renders postLeave likewise. The steady rendering sees every member
// and no join, and never carries the membership hooks.
func TestForMembership(t *testing.T) {
	d, err := compileYAML(t, "/srv/c.yaml", membershipManifest)
	if err != nil {
		t.Fatal(err)
	}
	steady := d.Node("n4").Component("db")
	if got := string(steady.Files[0].Content); got != "false n1 n2 n3 n4 " {
		t.Errorf("steady file %q", got)
	}
	if steady.Hooks["preJoin"] != nil || steady.Hooks["postLeave"] != nil {
		t.Errorf("steady hooks %v: the membership hooks are rendered for their change only", steady.Hooks)
	}
	w, err := d.ForMembership(Action{Node: "n4", Component: "db", Kind: ActionInstall, Membership: MemberJoin, Via: "n2", Members: "n1,n2,n4"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(w.Want.Files[0].Content); got != "true n1 n2 n4 " {
		t.Errorf("joining file %q", got)
	}
	if w.Want.ConfigHash == steady.ConfigHash {
		t.Error("the join's config hash is the steady one")
	}
	if w.Via.Name != "n2" || w.HookName != "preJoin" || !slices.Equal(w.Hook.Command, []string{"add", "on=10.0.0.2", "n4=10.0.0.4", "true"}) {
		t.Errorf("join: via %s, %s %q", w.Via.Name, w.HookName, w.Hook.Command)
	}
	w, err = d.ForMembership(Action{Node: "n3", Component: "db", Kind: ActionRemove, Membership: MemberLeave, Via: "n1", Members: "n1,n2"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Want != nil || w.HookName != "postLeave" || !slices.Equal(w.Hook.Command, []string{"remove", "on=10.0.0.1", "n3", "2"}) {
		t.Errorf("leave: want %v, %s %q", w.Want, w.HookName, w.Hook.Command)
	}
	if _, err := d.ForMembership(Action{Node: "n3", Component: "db", Kind: ActionRemove, Membership: MemberLeave}); !errors.Is(err, ErrNoMember) {
		t.Errorf("a leave with no member to run its hook: %v", err)
	}
}
