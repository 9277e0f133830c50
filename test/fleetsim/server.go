package fleetsim

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Fleet is a running set of simulated nodes.
type Fleet struct {
	Nodes []*Node
	// known is the known_hosts text for every node.
	known []byte

	listeners []net.Listener
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	closed    bool

	open, accepted, sessions atomic.Int64
	// probed counts nodes that answered a probe; probes and steps, what
	// all nodes answered; firstStep is when the first step after
	// ArmFirstStep arrived (unix ns, 0: none yet).
	probed, probes, steps, firstStep atomic.Int64
}

// counted is called under n.mu each time node n answers a probe or a step.
func (f *Fleet) counted(n *Node, probe bool) {
	if f == nil {
		return
	}
	if probe {
		f.probes.Add(1)
		if n.probes == 1 {
			f.probed.Add(1)
		}
		return
	}
	f.steps.Add(1)
	f.firstStep.CompareAndSwap(0, time.Now().UnixNano())
}

// ArmFirstStep forgets when the last step arrived, for FirstStep.
func (f *Fleet) ArmFirstStep() { f.firstStep.Store(0) }

// FirstStep is when the first step since ArmFirstStep reached a node.
func (f *Fleet) FirstStep() (time.Time, bool) {
	ns := f.firstStep.Load()
	return time.Unix(0, ns), ns != 0
}

// Options configure a Fleet.
type Options struct {
	// Addresses, one per node; the nodes listen on port 22 of each.
	Addresses []string
	// Names of the nodes (default: the address).
	Names []string
	// AuthorizedKey may log in, under any user name.
	AuthorizedKey ssh.PublicKey
	// Port to listen on (default 22).
	Port int
}

// Address is the i-th address of the loopback range 127.1.0.1 upwards,
// skipping .0 and .255 in the last byte: 254 per /24, so 10,000 nodes
// fit in 127.1.0.0/16 and 256,000 in 127.1–127.4.
func Address(i int) string {
	const perBlock = 254
	b := i / perBlock
	return fmt.Sprintf("127.%d.%d.%d", 1+b/256, b%256, 1+i%perBlock)
}

// Start listens on every address and serves each with its own fresh
// ed25519 host key. Each node starts with an empty model.
func Start(opts Options) (*Fleet, error) {
	if opts.Port == 0 {
		opts.Port = 22
	}
	f := &Fleet{conns: map[net.Conn]struct{}{}}
	var known bytes.Buffer
	for i, addr := range opts.Addresses {
		ip := net.ParseIP(addr)
		if ip == nil || !ip.IsLoopback() {
			f.Close()
			return nil, fmt.Errorf("fleetsim: %q is not a loopback address", addr)
		}
		name := addr
		if i < len(opts.Names) {
			name = opts.Names[i]
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			f.Close()
			return nil, err
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			f.Close()
			return nil, err
		}
		hostport := net.JoinHostPort(addr, fmt.Sprint(opts.Port))
		known.WriteString(knownhosts.Line([]string{knownhosts.Normalize(hostport)}, signer.PublicKey()))
		known.WriteByte('\n')
		ln, err := net.Listen("tcp", hostport)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleetsim: node %s: %w", name, err)
		}
		n := &Node{Name: name, Address: addr, model: NewModel(name), fleet: f}
		f.Nodes = append(f.Nodes, n)
		f.listeners = append(f.listeners, ln)
		cfg := &ssh.ServerConfig{
			PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
				if opts.AuthorizedKey != nil && bytes.Equal(key.Marshal(), opts.AuthorizedKey.Marshal()) {
					return &ssh.Permissions{}, nil
				}
				return nil, errors.New("not authorized")
			},
		}
		cfg.AddHostKey(signer)
		f.wg.Add(1)
		go f.accept(ln, cfg, n)
	}
	f.known = known.Bytes()
	return f, nil
}

// KnownHosts is a known_hosts file for every node of the fleet.
func (f *Fleet) KnownHosts() []byte { return f.known }

// Stats are the fleet's counters.
type Stats struct {
	Open, Accepted, Sessions int64
	// Probed is how many nodes answered a probe at least once.
	Probed        int64
	Probes, Steps int64
}

// Stats returns the counters: connections open now, accepted so far,
// and sessions opened.
func (f *Fleet) Stats() Stats {
	return Stats{Open: f.open.Load(), Accepted: f.accepted.Load(), Sessions: f.sessions.Load(),
		Probed: f.probed.Load(), Probes: f.probes.Load(), Steps: f.steps.Load()}
}

// Close stops every listener and connection and waits for the
// goroutines.
func (f *Fleet) Close() {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	for _, ln := range f.listeners {
		ln.Close()
	}
	f.wg.Wait()
}

func (f *Fleet) accept(ln net.Listener, cfg *ssh.ServerConfig, n *Node) {
	defer f.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = struct{}{}
		f.mu.Unlock()
		f.accepted.Add(1)
		f.open.Add(1)
		f.wg.Add(1)
		go f.serve(c, cfg, n)
	}
}

func (f *Fleet) serve(c net.Conn, cfg *ssh.ServerConfig, n *Node) {
	defer f.wg.Done()
	defer func() {
		c.Close()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.open.Add(-1)
	}()
	sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(r.Type == "keepalive@openssh.com", nil)
			}
		}
	}()
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.Prohibited, "fleetsim: only sessions")
			continue
		}
		f.sessions.Add(1)
		go n.session(nc)
	}
}

// session serves one session channel: one exec request.
func (n *Node) session(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	var cmd string
	for r := range reqs {
		if r.Type == "exec" && cmd == "" {
			var payload struct{ Command string }
			if ssh.Unmarshal(r.Payload, &payload) == nil && payload.Command != "" {
				cmd = payload.Command
				r.Reply(true, nil)
				break
			}
		}
		if r.WantReply {
			r.Reply(r.Type == "env", nil)
		}
	}
	if cmd == "" {
		return
	}
	go func() {
		for r := range reqs {
			if r.WantReply {
				r.Reply(false, nil) // signals: nothing runs long enough
			}
		}
	}()
	var code int
	if cmd == "exec sh" || cmd == "exec sudo -n sh" {
		code = n.residentShell(ch)
	} else {
		code = n.exec(ch, cmd)
	}
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}

// exec runs one Run command: `exec [sudo -n] [timeout -s KILL N] sh -c SCRIPT`.
func (n *Node) exec(ch ssh.Channel, cmd string) int {
	i := strings.Index(cmd, "sh -c ")
	if i < 0 {
		fmt.Fprintf(ch.Stderr(), "fleetsim: command not simulated: %.80q\n", cmd)
		return 127
	}
	w, err := shellWords(cmd[i+len("sh -c "):])
	if err != nil || len(w) != 1 {
		fmt.Fprintf(ch.Stderr(), "fleetsim: bad command: %v\n", err)
		return 2
	}
	stdin, err := io.ReadAll(ch)
	if err != nil {
		return 1
	}
	res := n.runScript(w[0], stdin)
	ch.Write(res.stdout)
	ch.Stderr().Write(res.stderr)
	return res.code
}

// residentShell serves inventory.Pool.Query's resident shell: it reads
// each framed request from stdin and answers as sh would (see
// inventory.residentShell.run): the first script's stderr end on the
// session's stderr, then dq_out and the end marker with the status.
func (n *Node) residentShell(ch ssh.Channel) int {
	r := bufio.NewReaderSize(ch, 64<<10)
	var req strings.Builder
	for {
		line, err := r.ReadString('\n')
		req.WriteString(line)
		if err != nil {
			return 0 // stdin closed: the shell exits
		}
		// The last line of every request prints the answer's end.
		rest, ok := strings.CutPrefix(line, `printf '%s\n%s %s\n' "$dq_out" `)
		if !ok {
			continue
		}
		marker, _, _ := strings.Cut(rest, " ")
		text := req.String()
		req.Reset()
		body, ok := requestScript(text)
		var res stepResult
		if !ok {
			res = stepResult{stderr: []byte("fleetsim: bad resident shell request\n"), code: 2}
		} else if isProbe(body) {
			res = n.runScript(body, nil)
		} else {
			res = stepResult{stderr: []byte("fleetsim: only probes run in the resident shell\n"), code: 127}
		}
		first := strings.Contains(text, "printf '\\n%s 0\\n' "+marker+" >&2\n")
		if first {
			ch.Stderr().Write(res.stderr)
			fmt.Fprintf(ch.Stderr(), "\n%s 0\n", marker)
		} else if len(res.stderr) > 0 {
			// The script's stderr (fd 9's file) goes after an "e" frame.
			fmt.Fprintf(ch, "%s\n%s e\n", res.stdout, marker)
			ch.Write(res.stderr)
			res.stdout = nil
		}
		// The probe leaves its whole output in dq_out.
		if _, err := fmt.Fprintf(ch, "%s\n%s %d\n", res.stdout, marker, res.code); err != nil {
			return 0
		}
	}
}

// requestScript is the script inside one resident-shell request:
// between "dq_out=\n{\n" and "\n} </dev/null".
func requestScript(text string) (string, bool) {
	const open = "dq_out=\n{\n"
	i := strings.LastIndex(text, open)
	if i < 0 {
		return "", false
	}
	body := text[i+len(open):]
	j := strings.LastIndex(body, "\n} </dev/null")
	if j < 0 {
		return "", false
	}
	return body[:j], true
}

// RaiseFDLimit raises the limit on open files to at least want (the hard
// limit too, which needs root) and returns the soft limit: a fleet holds
// a listener and a connection per node, plus a few dozen descriptors.
func RaiseFDLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		lim.Max = want
	}
	lim.Cur = max(lim.Cur, min(want, lim.Max))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("raise the open files limit to %d: %w", want, err)
	}
	return lim.Cur, nil
}
