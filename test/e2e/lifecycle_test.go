package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drover-project/drover/test/harness"
)

// etcdSpec is what the lifecycle test varies in the etcd component.
type etcdSpec struct {
	Artifact harness.Artifact
	// ReloadToken goes into conf/reload.conf (onChange: reload);
	// PreStop, when set, replaces the preStop hook's command.
	ReloadToken string
	PreStop     string
	OnFailure   string
	// Roles places etcd (default [master]); PreJoin, when set, replaces
	// the preJoin hook's command.
	Roles   string
	PreJoin string
}

// etcdYAML is examples/etcd's component on the masters: etcd's own
// tarball layout (stripComponents), exec as a list, an http check of
// /health's JSON, a templated leader check, a preStop hook that moves the
// leadership away, a preRemove hook that deletes the data dir, a reload
// file and a none file.
func etcdYAML(e etcdSpec) string {
	preStop := `["/bin/sh", "{{ .Dir }}/conf/move-leader.sh"]`
	if e.PreStop != "" {
		preStop = e.PreStop
	}
	preJoin := `[/bin/sh, "{{ .Dir }}/conf/member.sh", add, "{{ .Member.Name }}", "http://{{ .Member.Address }}:2380"]`
	if e.PreJoin != "" {
		preJoin = e.PreJoin
	}
	return fmt.Sprintf(`    - name: etcd
      version: %q
      roles: %s
      quorum: true
      artifact: {path: %s, sha256: %s, stripComponents: 1}
      files:
        - path: conf/reload.conf
          onChange: reload
          template: "token=%s\n"
        - path: conf/move-leader.sh
          onChange: none
          template: |
            # preStop: hand the leadership to another started member when this one leads.
            set -eu
            ctl="{{ .Dir }}/etcdctl --endpoints=http://{{ .Node.Address }}:2379"
            # Only into a healthy cluster: with members gone (the whole cluster
            # removed) there is nobody to hand the lead to, and nothing to keep.
            $ctl endpoint health --cluster > /dev/null 2>&1 || { echo "not every member is healthy: leadership not moved"; exit 0; }
            s=$($ctl endpoint status -w fields)
            id=$(printf '%%s\n' "$s" | sed -n 's/^"MemberID" : //p')
            printf '%%s\n' "$s" | grep -qx "\"Leader\" : $id" || { echo "not the leader: nothing to move"; exit 0; }
            to=$($ctl member list | awk -F', ' '$3 != "{{ .Node.Name }}" && $2 == "started" { print $1; exit }')
            [ -n "$to" ] || { echo "no other started member to take the lead" >&2; exit 1; }
            # A member stopping meanwhile (the whole cluster removed) fails the move: nothing to keep then.
            $ctl move-leader "$to" || { $ctl endpoint health --cluster > /dev/null 2>&1 && exit 1; echo "members went away: leadership not moved"; }
        # Read by etcd at its first start only (the data dir holds the
        # membership after that), so a change restarts nothing.
        - path: conf/initial-cluster.env
          onChange: none
          template: |
            ETCD_INITIAL_CLUSTER_STATE={{ if .Component.Joining }}existing{{ else }}new{{ end }}
            ETCD_INITIAL_CLUSTER={{ range $i, $m := .Component.Members }}{{ if $i }},{{ end }}{{ $m.Name }}=http://{{ $m.Address }}:2380{{ end }}
        # preJoin and postLeave, run on a member that stays: idempotent,
        # since drover runs them again after a failure.
        - path: conf/member.sh
          onChange: none
          template: |
            set -eu
            ctl="{{ .Dir }}/etcdctl --endpoints=http://{{ .Node.Address }}:2379"
            op=$1 name=$2 peer=$3
            id=$($ctl member list | awk -F', ' -v p="$peer" '$4 == p { print $1 }')
            case $op in
            add)
            	if [ -n "$id" ]; then echo "$name is a member already"; exit 0; fi
            	# etcd refuses a member while one it has is connected for less than 5s (strict reconfig check).
            	i=0; until $ctl member add "$name" --peer-urls="$peer"; do i=$((i+1)); [ $i -lt 20 ] || exit 1; sleep 1; done ;;
            remove) if [ -z "$id" ]; then echo "$name is no member"; else $ctl member remove "$id"; fi ;;
            esac
      service:
        # The initial cluster comes from the file (flags would be the unit's, and restart etcd on every change of the group).
        exec:
          - /bin/sh
          - -c
          - 'set -a && . {{ .Dir }}/conf/initial-cluster.env && exec "$0" "$@"'
          - "{{ .Dir }}/etcd"
          - "--name={{ .Node.Name }}"
          - --data-dir=/var/lib/drover-etcd
          - "--listen-client-urls=http://{{ .Node.Address }}:2379"
          - "--advertise-client-urls=http://{{ .Node.Address }}:2379"
          - "--listen-peer-urls=http://{{ .Node.Address }}:2380"
          - "--initial-advertise-peer-urls=http://{{ .Node.Address }}:2380"
          - --initial-cluster-token=drover-e2e
        # etcd has no reload: this stands for one, and shows that it ran.
        reload: [/bin/cp, "{{ .Dir }}/conf/reload.conf", /run/drover-etcd-reloaded]
      health: {http: {port: 2379, path: /health, bodyJSON: {health: "true"}}, timeout: 5s}
      leader:
        exec:
          command:
            - /bin/sh
            - -c
            - |
              s=$({{ .Dir }}/etcdctl --endpoints=http://{{ .Node.Address }}:2379 endpoint status -w fields) || exit 1
              id=$(printf '%%s\n' "$s" | sed -n 's/^"MemberID" : //p')
              [ -n "$id" ] && printf '%%s\n' "$s" | grep -qx "\"Leader\" : $id"
      hooks:
        preStop: {command: %s, timeout: 30s}
        # preRemove runs before drover stops the unit: a member still running would write into the dir again.
        preRemove: {command: [/bin/sh, -c, "systemctl stop drover-etcd.service && rm -rf /var/lib/drover-etcd"]}
        preJoin: {command: %s, timeout: 30s}
        postLeave: {command: [/bin/sh, "{{ .Dir }}/conf/member.sh", remove, "{{ .Member.Name }}", "http://{{ .Member.Address }}:2380"], timeout: 30s}
`, e.Artifact.Version, orDefault(e.Roles, "[master]"), e.Artifact.Path, e.Artifact.SHA256, e.ReloadToken, preStop, preJoin)
}

// writeEtcd is the current cluster's manifest with etcd on the masters.
func (s *suite) writeEtcd(t *testing.T, sp spec, e etcdSpec) string {
	t.Helper()
	if e.OnFailure != "" {
		sp.OnFailure = e.OnFailure
	}
	y := s.yaml(sp)
	i := strings.Index(y, "\n  rollout:\n") + 1 // the cluster's, not a component's
	y = y[:i] + etcdYAML(e) + y[i:]
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *suite) etcdEndpoints() string {
	var eps []string
	for _, n := range s.masters {
		eps = append(eps, "http://"+n.Address+":2379")
	}
	return strings.Join(eps, ",")
}

// etcdctl runs the host's etcdctl (Debian's etcd-client, the official
// client library behind a CLI) against the masters.
func (s *suite) etcdctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "etcdctl", append([]string{"--endpoints=" + s.etcdEndpoints(), "--command-timeout=3s"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var raftTermRE = regexp.MustCompile(`"RaftTerm" : (\d+)`)
var leaderRE = regexp.MustCompile(`"Leader" : (\d+)`)

// etcdStatus is the highest raft term the members report and the leader
// id they agree on ("" when they do not).
func (s *suite) etcdStatus(t *testing.T) (term int, leader string) {
	t.Helper()
	out, err := s.etcdctl(context.Background(), "endpoint", "status", "-w", "fields")
	if err != nil {
		t.Fatalf("etcdctl endpoint status: %v\n%s", err, out)
	}
	for _, m := range raftTermRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		term = max(term, n)
	}
	for _, m := range leaderRE.FindAllStringSubmatch(out, -1) {
		if leader != "" && leader != m[1] {
			return term, ""
		}
		leader = m[1]
	}
	return term, leader
}

// etcdLeaderNode is the master whose member leads.
func (s *suite) etcdLeaderNode(t *testing.T) harness.Node {
	t.Helper()
	for _, n := range s.masters {
		out := s.exec(t, n, installRoot+"/active/etcd/etcdctl --endpoints=http://"+n.Address+":2379 endpoint status -w fields")
		var id, leader string
		for _, l := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"MemberID" : `); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), `"Leader" : `); ok {
				leader = v
			}
		}
		if id != "" && id == leader {
			return n
		}
	}
	t.Fatal("no etcd member leads")
	return harness.Node{}
}

// TestEtcdLifecycle: a real etcd cluster through the lifecycle features.
// A rolling upgrade whose preStop moves the leadership off the leader
// before drover restarts it: the leader is restarted, the term grows by
// that one hand-over only (no election), and every write of a writer
// running throughout succeeds. A reload file change reloads (MainPID
// unchanged); a none file's drift is repaired touching nothing; the
// group grows to five members and shrinks back to three
// (etcdGrowShrink); a failing preStop halts with its output; removing
// etcd runs preRemove.
func TestEtcdLifecycle(t *testing.T) {
	s := setup(t)
	old, updated, ok := harness.EtcdArtifacts(s.arts)
	if !ok {
		t.Fatal("no etcd artifacts: install etcd-server and etcd-client (make deps)")
	}
	if _, err := exec.LookPath("etcdctl"); err != nil {
		t.Fatal("etcdctl is not on the host: install etcd-client (make deps)")
	}
	sp := s.current(t)
	e := etcdSpec{Artifact: old, ReloadToken: "a"}
	s.mustApply(t, s.writeEtcd(t, sp, e))
	defer s.mustApply(t, s.write(t, sp)) // the shared cluster without etcd again
	for _, n := range s.masters {
		if out := s.exec(t, n, "test -x "+installRoot+"/active/etcd/etcd && echo ok"); strings.TrimSpace(out) != "ok" {
			t.Fatalf("%s: stripComponents: no etcd at the top of the version dir", n.Name)
		}
	}

	// Rolling upgrade with a writer.
	leader := s.etcdLeaderNode(t)
	termBefore, _ := s.etcdStatus(t)
	pids := map[string]string{}
	for _, n := range s.masters {
		_, _, pids[n.Name] = s.unitState(t, n, "etcd")
	}
	e.Artifact = updated
	m := s.writeEtcd(t, sp, e)
	ctx, stop := context.WithCancel(context.Background())
	type put struct {
		err error
		out string
	}
	done := make(chan []put, 1)
	go func() {
		var puts []put
		for i := 0; ctx.Err() == nil; i++ {
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, err := s.etcdctl(pctx, "put", fmt.Sprintf("/drover-e2e/%05d", i), "x")
			cancel()
			puts = append(puts, put{err: err, out: out})
			time.Sleep(50 * time.Millisecond)
		}
		done <- puts
	}()
	r := s.run(t, m, "apply", "--yes")
	time.Sleep(time.Second)
	stop()
	puts := <-done
	if r.Code != 0 {
		t.Fatalf("apply exited %d", r.Code)
	}
	_, order := maxOverlap(r.Stdout, "etcd")
	if len(order) != len(s.masters) || order[len(order)-1] != leader.Name {
		t.Errorf("etcd changed on %v; want every master, %s (the leader) last", order, leader.Name)
	}
	failed := 0
	for _, p := range puts {
		if p.err != nil {
			failed++
			t.Logf("failed put: %v: %s", p.err, strings.TrimSpace(p.out))
		}
	}
	t.Logf("%d puts, %d failed", len(puts), failed)
	if len(puts) < 20 || failed > 0 {
		t.Errorf("%d of %d writes failed during the rolling upgrade; want none (and at least 20 writes)", failed, len(puts))
	}
	for _, n := range s.masters {
		if _, _, pid := s.unitState(t, n, "etcd"); pid == pids[n.Name] || pid == "0" {
			t.Errorf("%s: etcd main pid %s (was %s): not restarted", n.Name, pid, pids[n.Name])
		}
	}
	termAfter, _ := s.etcdStatus(t)
	// The one hand-over preStop made (a transfer starts a new term);
	// restarting a leader would have cost an election besides.
	if termAfter != termBefore+1 {
		t.Errorf("raft term %d -> %d: want exactly one more, the leadership moved by preStop, and no election", termBefore, termAfter)
	}
	if now := s.etcdLeaderNode(t); now.Name == leader.Name {
		t.Errorf("%s still leads: preStop did not move the leadership away", leader.Name)
	}

	// A reload file: reloaded, not restarted.
	for _, n := range s.masters {
		_, _, pids[n.Name] = s.unitState(t, n, "etcd")
	}
	e.ReloadToken = "b"
	m = s.writeEtcd(t, sp, e)
	plan := s.run(t, m, "plan")
	if !strings.Contains(plan.Stdout, "[reload]") {
		t.Errorf("plan does not show the reload effect:\n%s", plan.Stdout)
	}
	s.mustApply(t, m)
	for _, n := range s.masters {
		if _, _, pid := s.unitState(t, n, "etcd"); pid != pids[n.Name] {
			t.Errorf("%s: etcd main pid %s, was %s: a reload file restarted it", n.Name, pid, pids[n.Name])
		}
		if got := strings.TrimSpace(s.exec(t, n, "cat /run/drover-etcd-reloaded")); got != "token=b" {
			t.Errorf("%s: ExecReload left %q, want token=b", n.Name, got)
		}
	}

	// A none file's drift: repaired, the service untouched.
	n0 := s.masters[0]
	s.exec(t, n0, "echo edited >> "+installRoot+"/active/etcd/conf/move-leader.sh; rm -f /run/drover-etcd-reloaded")
	r = s.mustApply(t, m)
	if !strings.Contains(r.Stdout, "[none]") {
		t.Errorf("apply does not show the none effect:\n%s", r.Stdout)
	}
	if _, _, pid := s.unitState(t, n0, "etcd"); pid != pids[n0.Name] {
		t.Errorf("%s: etcd main pid %s, was %s: a none file restarted it", n0.Name, pid, pids[n0.Name])
	}
	if out := s.exec(t, n0, "test -e /run/drover-etcd-reloaded && echo reloaded; grep -c edited "+installRoot+"/active/etcd/conf/move-leader.sh || true"); strings.TrimSpace(out) != "0" {
		t.Errorf("%s: after the none repair: %q (want no reload and the edit gone)", n0.Name, out)
	}
	s.mustPlanEmpty(t, m)

	t.Run("grow and shrink", func(t *testing.T) { s.etcdGrowShrink(t, sp, e) })

	// A failing preStop halts the rollout with the hook's output.
	e.Artifact = old
	e.PreStop = `[/bin/sh, -c, "echo drain incomplete on {{ .Node.Name }} >&2; exit 3"]`
	e.OnFailure = "halt"
	r = s.run(t, s.writeEtcd(t, sp, e), "apply", "--yes")
	out := r.Stdout + r.Stderr
	if r.Code == 0 || !strings.Contains(out, "hook preStop failed") || !strings.Contains(out, "drain incomplete on") || !strings.Contains(out, "halt") {
		t.Errorf("apply with a failing preStop exited %d; want a halt naming the hook and its output", r.Code)
	}

	// Removed: preRemove deletes the data dir (the deferred apply).
	s.mustApply(t, s.write(t, sp))
	for _, n := range s.masters {
		if out := s.exec(t, n, "test -e /var/lib/drover-etcd && echo left || echo gone"); strings.TrimSpace(out) != "gone" {
			t.Errorf("%s: preRemove did not delete the data dir", n.Name)
		}
	}
}
