package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/drover-project/drover/manifests"
	"github.com/drover-project/drover/reconciler/plan"
	"github.com/drover-project/drover/test/fleetsim"
)

// A process may hold at most RLIMIT_NOFILE descriptors (20,000 here, and
// raising the hard limit needs CAP_SYS_RESOURCE), and a simulated node
// costs two: its listener and its connection. So the fleet runs in shard
// processes of at most shardSize nodes, this binary run again with
// -shard, each driven over its stdin and stdout by a line protocol:
//
//	stats    -> one line of JSON: shardStats
//	arm      -> "ok": forget when the last step arrived
//	fail I   -> "ok": node I (fleet index) starts failing its health check
//
// and EOF on stdin stops it. The bench measures the shards' CPU as the
// simulator's.
const shardSize = 8000

// shardStats is what "stats" answers.
type shardStats struct {
	fleetsim.Stats
	FirstStep int64 // unix ns of the first step since "arm", 0: none
}

// serveShard is the shard process: nodes [from, to) of the manifest.
func serveShard(from, to int, pubFile, knownOut, manifest string) error {
	if _, err := fleetsim.RaiseFDLimit(uint64(2*(to-from) + 256)); err != nil {
		return err
	}
	raw, err := os.ReadFile(pubFile)
	if err != nil {
		return err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		return err
	}
	addrs := make([]string, 0, to-from)
	names := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		addrs, names = append(addrs, fleetsim.Address(i)), append(names, nodeName(i))
	}
	fleet, err := fleetsim.Start(fleetsim.Options{Addresses: addrs, Names: names, AuthorizedKey: pub})
	if err != nil {
		return err
	}
	defer fleet.Close()
	if err := os.WriteFile(knownOut, fleet.KnownHosts(), 0o644); err != nil {
		return err
	}
	l, err := manifests.Load(manifest)
	if err != nil {
		return err
	}
	d, err := plan.Compile(l)
	if err != nil {
		return err
	}
	for i, n := range fleet.Nodes {
		var serr error
		n.Do(func(m *fleetsim.Model) { serr = fleetsim.Converge(m, d, d.Nodes[from+i], "") })
		if serr != nil {
			return serr
		}
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "stats":
			at, ok := fleet.FirstStep()
			st := shardStats{Stats: fleet.Stats()}
			if ok {
				st.FirstStep = at.UnixNano()
			}
			b, _ := json.Marshal(st)
			out.Write(append(b, '\n'))
		case "arm":
			fleet.ArmFirstStep()
			fmt.Fprintln(out, "ok")
		case "fail":
			i, err := strconv.Atoi(arg)
			if err != nil || i < from || i >= to {
				fmt.Fprintln(out, "bad node")
				break
			}
			fleet.Nodes[i-from].Do(func(m *fleetsim.Model) { m.HealthFail["app"] = 1 })
			fmt.Fprintln(out, "ok")
		default:
			fmt.Fprintln(out, "unknown command")
		}
		out.Flush()
	}
	return nil
}

// shard is one shard process, seen from the bench.
type shard struct {
	from, to int
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Reader
	mu       sync.Mutex
}

// shards is the whole simulated fleet.
type shards []*shard

// startShards starts the shard processes for n nodes and writes the
// fleet's known_hosts to known.
func startShards(dir string, n int, pubFile, known, manifest string) (shards, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var all shards
	var kh []byte
	for from := 0; from < n; from += shardSize {
		to := min(from+shardSize, n)
		part := filepath.Join(dir, fmt.Sprintf("known_hosts.%d", from))
		cmd := exec.Command(self, "-shard", fmt.Sprintf("%d:%d", from, to), "-shard-pub", pubFile, "-shard-known", part, "-shard-manifest", manifest)
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		in, err := cmd.StdinPipe()
		if err != nil {
			all.close()
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			all.close()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			all.close()
			return nil, err
		}
		s := &shard{from: from, to: to, cmd: cmd, in: in, out: bufio.NewReader(stdout)}
		all = append(all, s)
		if line, err := s.out.ReadString('\n'); err != nil || line != "ready\n" {
			all.close()
			return nil, fmt.Errorf("shard %d:%d did not start: %q %v", from, to, line, err)
		}
		b, err := os.ReadFile(part)
		if err != nil {
			all.close()
			return nil, err
		}
		kh = append(kh, b...)
	}
	if err := os.WriteFile(known, kh, 0o644); err != nil {
		all.close()
		return nil, err
	}
	return all, nil
}

func (s *shard) ask(line string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintln(s.in, line); err != nil {
		return "", err
	}
	return s.out.ReadString('\n')
}

// stats sums the shards' counters; FirstStep is the earliest.
func (all shards) stats() shardStats {
	var sum shardStats
	for _, s := range all {
		line, err := s.ask("stats")
		var st shardStats
		if err != nil || json.Unmarshal([]byte(line), &st) != nil {
			log.Printf("shard %d:%d: stats: %v", s.from, s.to, err)
			continue
		}
		sum.Open += st.Open
		sum.Accepted += st.Accepted
		sum.Sessions += st.Sessions
		sum.Probed += st.Probed
		sum.Probes += st.Probes
		sum.Steps += st.Steps
		if st.FirstStep != 0 && (sum.FirstStep == 0 || st.FirstStep < sum.FirstStep) {
			sum.FirstStep = st.FirstStep
		}
	}
	return sum
}

func (all shards) arm() {
	for _, s := range all {
		s.ask("arm")
	}
}

// fail makes node i start failing its health check.
func (all shards) fail(i int) {
	for _, s := range all {
		if i >= s.from && i < s.to {
			s.ask("fail " + strconv.Itoa(i))
		}
	}
}

// cpu is the CPU all shard processes used so far.
func (all shards) cpu() time.Duration {
	var sum time.Duration
	for _, s := range all {
		c, _ := procCPU(s.cmd.Process.Pid)
		sum += c
	}
	return sum
}

func (all shards) close() {
	for _, s := range all {
		s.in.Close()
	}
	for _, s := range all {
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	}
}
