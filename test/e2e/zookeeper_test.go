package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// write is one attempt of the writer: a new session on the first member
// that takes it (members tried in turn, starting from a rotating one) and
// one create, acknowledged only once a quorum has logged it.
type write struct {
	path       string
	start, end time.Time
	server     string
	err        error
}

// writer writes to the ensemble every 100ms until ctx ends.
func writer(ctx context.Context, addrs []string, prefix string) <-chan []write {
	ch := make(chan []write, 1)
	go func() {
		var ws []write
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			rot := append(append([]string{}, addrs[i%len(addrs):]...), addrs[:i%len(addrs)]...)
			w := write{path: fmt.Sprintf("%s-%05d", prefix, i), start: time.Now()}
			w.server, w.err = zkCreateOnce(context.WithoutCancel(ctx), rot, w.path, []byte("drover"))
			w.end = time.Now()
			ws = append(ws, w)
			select {
			case <-ctx.Done():
				ch <- ws
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}

// outage is the longest stretch without an acknowledged write (from the
// end of the last success before a failure to the end of the next
// success), the number of failed writes and of such stretches.
func outage(ws []write) (worst time.Duration, failed, stretches int) {
	var lastOK time.Time
	streak := false
	for _, w := range ws {
		if w.err != nil {
			failed++
			if !streak {
				stretches++
			}
			streak = true
			continue
		}
		if streak && !lastOK.IsZero() {
			worst = max(worst, w.end.Sub(lastOK))
		}
		streak = false
		lastOK = w.end
	}
	if streak { // the run ended in failure: the outage lasts to the end
		worst = max(worst, ws[len(ws)-1].end.Sub(lastOK))
	}
	return worst, failed, stretches
}

// TestZooKeeperKeepsQuorum rolls a zoo.cfg change through the three
// masters while a client writes to the ensemble ten times a second. The
// members restart one at a time, each only once the previous one serves
// again, and the leader last, so writes go on: the only failures allowed
// are those of one short leader election, and every acknowledged write
// survives.
func TestZooKeeperKeepsQuorum(t *testing.T) {
	s := setup(t)
	// Whichever node_exporter the nodes run: only ZooKeeper matters here.
	sp := s.current(t)
	s.mustApply(t, s.write(t, sp))
	s.requireEnsemble(t)
	// A fresh ensemble elects its highest id, the last master, which node
	// order would change last anyway: move the lead to another member so
	// that changing the leader last is drover's doing.
	leader := s.zkLeader(t)
	if leader == s.masters[len(s.masters)-1].Name {
		s.exec(t, s.masters[len(s.masters)-1], "systemctl restart drover-zookeeper")
		deadline := time.Now().Add(2 * time.Minute)
		for leader = s.zkLeader(t); leader == "" || leader == s.masters[len(s.masters)-1].Name || !s.zkAllServe(); leader = s.zkLeader(t) {
			if time.Now().After(deadline) {
				t.Fatalf("the ensemble did not settle with a new leader after a restart of %s", s.masters[len(s.masters)-1].Name)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	t.Logf("%s leads before the rollout", leader)
	pids := map[string]string{}
	for _, n := range s.masters {
		_, _, pids[n.Name] = s.unitState(t, n, "zookeeper")
	}

	sp.ZKComment = fmt.Sprintf("rolling change %d", time.Now().UnixNano())
	m := s.write(t, sp)

	ctx, stop := context.WithCancel(context.Background())
	prefix := fmt.Sprintf("/drover-e2e-quorum-%d", time.Now().UnixNano())
	writes := writer(ctx, s.zkAddrs(), prefix)
	modes := sampleModes(ctx, s.zkAddrs())
	r := s.run(t, m, "apply", "--yes")
	// A few more writes after the last member is back.
	time.AfterFunc(time.Second, stop)
	ws := <-writes
	samples := <-modes
	if r.Code != 0 {
		t.Fatalf("apply exited %d, want 0", r.Code)
	}

	// The rollout: each member reconfigured and restarted, one at a time.
	overlap, order := maxOverlap(r.Stdout, "zookeeper")
	if len(order) != len(s.masters) || overlap != 1 {
		t.Errorf("zookeeper actions ran on %v, at most %d at once; want each master once, one at a time", order, overlap)
	}
	if len(order) > 0 && order[len(order)-1] != leader {
		t.Errorf("zookeeper actions ran on %v; want %s, the leader, last", order, leader)
	}
	for _, n := range s.masters {
		if _, _, pid := s.unitState(t, n, "zookeeper"); pid == pids[n.Name] || pid == "0" {
			t.Errorf("%s: zookeeper main pid %s (was %s): not restarted", n.Name, pid, pids[n.Name])
		}
		if cfg := s.exec(t, n, "cat "+installRoot+"/active/zookeeper/conf/zoo.cfg"); !strings.Contains(cfg, sp.ZKComment) {
			t.Errorf("%s: zoo.cfg was not changed", n.Name)
		}
	}

	// The writes.
	worst, failed, stretches := outage(ws)
	ok := len(ws) - failed
	perServer := map[string]int{}
	for _, w := range ws {
		if w.err == nil {
			perServer[w.server]++
		}
	}
	t.Logf("writes: %d acknowledged, %d failed in %d stretch(es), longest stretch without a write %v, by server %v",
		ok, failed, stretches, worst.Round(time.Millisecond), perServer)
	for _, w := range ws {
		if w.err != nil {
			t.Logf("failed write at +%v: %s", w.start.Sub(ws[0].start).Round(time.Millisecond), strings.ReplaceAll(w.err.Error(), "\n", "; "))
		}
	}
	t.Logf("srvr samples: %s", samples)
	if ok < 20 {
		t.Errorf("only %d writes acknowledged during the rollout; the writer did not run", ok)
	}
	// Restarting the leader costs one election, and the leader changes
	// last, so there is one.
	const election = 10 * time.Second
	if worst > election {
		t.Errorf("the ensemble took no write for %v, longer than a leader election (%v)", worst.Round(time.Millisecond), election)
	}
	if stretches > 1 {
		t.Errorf("writes failed in %d separate stretches; with the leader changed last, want at most one election", stretches)
	}

	// Every acknowledged write is still there.
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sess, err := zkDial(sctx, s.zkAddrs()[0], 10*time.Second)
	if err != nil {
		t.Fatalf("zookeeper session after the rollout: %v", err)
	}
	defer sess.close()
	lost := 0
	for _, w := range ws {
		if w.err != nil {
			continue
		}
		exists, err := sess.exists(w.path)
		if err != nil {
			t.Fatalf("exists %s: %v", w.path, err)
		}
		if !exists {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d acknowledged writes are gone after the rollout", lost)
	}
	s.requireEnsemble(t)
	s.mustPlanEmpty(t, m)
}

// zkLeader is the master whose member leads, or "" when none does now.
func (s *suite) zkLeader(t *testing.T) string {
	t.Helper()
	for _, n := range s.masters {
		if mode, err := zkMode(context.Background(), net.JoinHostPort(n.Address, "2181")); err == nil && mode == "leader" {
			return n.Name
		}
	}
	return ""
}

// zkAllServe says whether every member serves as leader or follower.
func (s *suite) zkAllServe() bool {
	for _, a := range s.zkAddrs() {
		if mode, err := zkMode(context.Background(), a); err != nil || (mode != "leader" && mode != "follower") {
			return false
		}
	}
	return true
}

// modeSamples counts, over the rollout, how many srvr samples found how
// many members serving.
type modeSamples struct {
	total   int
	serving map[int]int // members serving -> samples
	leaders map[int]int // leaders seen -> samples
}

func (m modeSamples) String() string {
	return fmt.Sprintf("%d samples; members serving: %v; leaders: %v", m.total, m.serving, m.leaders)
}

// sampleModes asks every member for its mode (srvr) every 250ms.
func sampleModes(ctx context.Context, addrs []string) <-chan modeSamples {
	ch := make(chan modeSamples, 1)
	go func() {
		ms := modeSamples{serving: map[int]int{}, leaders: map[int]int{}}
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			var mu sync.Mutex
			serving, leaders := 0, 0
			var wg sync.WaitGroup
			for _, a := range addrs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					mode, err := zkMode(context.WithoutCancel(ctx), a)
					mu.Lock()
					defer mu.Unlock()
					if err == nil && (mode == "leader" || mode == "follower") {
						serving++
					}
					if mode == "leader" {
						leaders++
					}
				}()
			}
			wg.Wait()
			ms.total++
			ms.serving[serving]++
			ms.leaders[leaders]++
			select {
			case <-ctx.Done():
				ch <- ms
				return
			case <-tick.C:
			}
		}
	}()
	return ch
}
